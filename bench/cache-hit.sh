#!/usr/bin/env bash
# npm run bench:cache [-- --runs N]: sets up what it needs, then times a cold isolated build, a
# plain Nx cache hit of a trivial target and a cache hit of the isolated build, on the fixture.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json bench/cache-hit.ts "$@"
