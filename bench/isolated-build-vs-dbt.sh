#!/usr/bin/env bash
# npm run bench [-- --runs N]: sets up what it needs, then times `nx run analytics:isolated-build`
# against bare `dbt build` of the same commit on the fixture workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json bench/isolated-build-vs-dbt.ts "$@"
