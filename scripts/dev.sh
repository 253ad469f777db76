#!/usr/bin/env bash
# One entry point for a fresh machine: makes sure Node.js >= 22.19 is on PATH (installing Node 24 LTS
# from the npm package `node@24` into .tools/ when the machine's Node is older), installs the locked
# dependencies when they are missing or stale, then runs the task.
#
#   bash scripts/dev.sh demo     # the main job on the embedded default (no cluster needed)
#   bash scripts/dev.sh test     # the test suites
#   bash scripts/dev.sh <npm-script> [args...]
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"

required_major=22
required_minor=19

node_is_recent_enough() {
  command -v node >/dev/null 2>&1 || return 1
  local version major minor
  version=$(node --version | sed 's/^v//')
  major=${version%%.*}
  minor=$(echo "$version" | cut -d. -f2)
  [ "$major" -gt "$required_major" ] || { [ "$major" -eq "$required_major" ] && [ "$minor" -ge "$required_minor" ]; }
}

if [ -x "$repo_root/.tools/node/node_modules/.bin/node" ]; then
  export PATH="$repo_root/.tools/node/node_modules/.bin:$PATH"
fi
if ! node_is_recent_enough; then
  echo "dev.sh: Node.js $(node --version 2>/dev/null || echo none) is older than ${required_major}.${required_minor}; installing Node 24 LTS from npm (node@24) into .tools/node" >&2
  mkdir -p "$repo_root/.tools/node"
  npm install --no-save --no-audit --no-fund --prefix "$repo_root/.tools/node" node@24 >&2
  export PATH="$repo_root/.tools/node/node_modules/.bin:$PATH"
  node_is_recent_enough || { echo "dev.sh: could not provision Node.js >= ${required_major}.${required_minor}" >&2; exit 1; }
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi

task=${1:-demo}
shift || true
case "$task" in
  demo) exec npm start --silent -- "$@" ;;
  test) exec npm test --silent -- "$@" ;;
  *) exec npm run --silent "$task" -- "$@" ;;
esac
