#!/bin/sh
# job-robot runs on Node.js 24. This runs a command with a Node 24 first on PATH: the machine's
# `node` when it is 24, else the one in the cache, fetched once from the npm registry's node@24
# package. The npm scripts (dev, test, test:unit, test:file, bench) and .ci/run go through it.
#
#   sh scripts/node24.sh COMMAND [ARG...]   runs COMMAND (exec: exit code and signals pass through)
#   sh scripts/node24.sh                    prints the folder holding that Node 24's `node`
#
# When Node 24 cannot be fetched (no npm, or the install fails), it stops with one line naming the fix.
set -u
NODE_DIR="${JOB_ROBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/job-robot}/node24"
BIN="$NODE_DIR/node_modules/.bin"

# The major version of the `node` at $1, or nothing when there is none.
major() {
  v=$("$1" --version 2>/dev/null) || v=
  v=${v#v}
  echo "${v%%.*}"
}

if [ "$(major node)" != 24 ]; then
  if [ "$(major "$BIN/node")" != 24 ]; then
    found=$(node --version 2>/dev/null) || found=none
    fix="job-robot needs Node.js 24 (found $found): install it, or run: npm install --prefix $NODE_DIR node@24"
    # npm's own output would bury the fix; the command in the fix shows it.
    if ! command -v npm >/dev/null 2>&1 ||
      ! mkdir -p "$NODE_DIR" ||
      ! npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund node@24 >/dev/null 2>&1 ||
      [ "$(major "$BIN/node")" != 24 ]; then
      echo "$fix" >&2
      exit 1
    fi
    echo "job-robot: fetched Node.js $("$BIN/node" --version) into $NODE_DIR (this machine's node is $found)" >&2
  fi
  PATH="$BIN:$PATH"
  export PATH
fi

if [ $# -eq 0 ]; then
  node=$(command -v node)
  echo "${node%/*}"
  exit 0
fi
exec "$@"
