#!/usr/bin/env bash
# Builds both executable formats, type-checks, then runs every suite. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "the suites make network namespaces: run as root" >&2; exit 1; fi
set -e
node build/build.mjs >&2
node build/build.mjs --format sea >&2
npx --no-install tsc --noEmit -p . >&2
set +e
node build/run-tests.mjs "$@"
