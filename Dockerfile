# One image for every job-robot component; the first argument picks it:
#   launcher (default) | reaper | bridge | reap | doctor
ARG NODE_IMAGE=docker.io/library/node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
COPY tsconfig.json tsconfig.build.json ./
COPY function ./function
RUN ["npm", "run", "build"]
RUN ["npm", "prune", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"]

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    PORT=8080
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/function ./dist/function
# Numeric uid so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "--enable-source-maps", "dist/function/cli.js"]
CMD ["launcher"]
