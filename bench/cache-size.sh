#!/usr/bin/env bash
# npm run bench:cache-size: sets up what it needs, then builds 10 commits of the fixture one after
# the other and measures what Nx's cache holds for them. E2E_TARBALL=<packed plugin> measures
# another revision of the plugin (for a before/after figure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json bench/cache-size.ts "$@"
