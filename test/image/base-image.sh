#!/usr/bin/env bash
# Assembles a local stand-in for the Node 24 base image the Dockerfile names, because no registry
# can be pulled from here: the Node 24 binary (from the npm registry's `node` package, the one on
# PATH), its shared libraries, npm, a busybox shell, CA certificates and a `node` user (uid 1000),
# on an empty root filesystem. Usage: test/image/base-image.sh [image-name]
set -euo pipefail
IMAGE="${1:-docker.io/library/node:24-slim}"
B=(buildah --storage-driver vfs)

command -v buildah >/dev/null || { echo "buildah is required (apt-get install buildah)" >&2; exit 1; }
NODE="$(command -v node)"
[ "$("$NODE" -p 'process.versions.node.split(".")[0]')" = 24 ] || { echo "node on PATH must be Node 24" >&2; exit 1; }
NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
BUSYBOX="$(command -v busybox || true)"
[ -n "$BUSYBOX" ] && ldd "$BUSYBOX" >/dev/null 2>&1 && BUSYBOX=""  # need the static one
if [ -z "$BUSYBOX" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  BUSYBOX=/bin/busybox
fi

ctr="$("${B[@]}" from scratch)"
trap '"${B[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
root="$("${B[@]}" mount "$ctr")"

mkdir -p "$root"/{bin,etc,tmp,home/node,usr/bin,usr/local/bin,usr/local/lib/node_modules,root}
chmod 1777 "$root/tmp"
install -m 0755 "$NODE" "$root/usr/local/bin/node"
for lib in $(ldd "$NODE" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  cp --parents -L "$lib" "$root/"
done
cp -a "$NPM_DIR" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
for tool in sh ls cat id env mkdir rm cp mv ln chmod chown sleep wget test true false; do ln -s busybox "$root/bin/$tool"; done
ln -s /bin/busybox "$root/usr/bin/env"  # npm and npx start with #!/usr/bin/env node
mkdir -p "$root/etc/ssl/certs"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
chown 1000:1000 "$root/home/node"

# Where this machine reaches the npm registry through a TLS proxy with its own CA (NODE_EXTRA_CA_CERTS
# on the host), the stand-in trusts the same bundle, so `npm ci` in the build stage works here too.
EXTRA=()
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && EXTRA=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
"${B[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin --env NODE_VERSION="$("$NODE" --version)" "${EXTRA[@]}" \
  --cmd node --label org.opencontainers.image.description="local stand-in for node:24-slim" "$ctr"
"${B[@]}" unmount "$ctr" >/dev/null
"${B[@]}" commit --quiet "$ctr" "$IMAGE" >/dev/null
echo "built $IMAGE ($("$NODE" --version))"
