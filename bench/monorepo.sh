#!/usr/bin/env bash
# npm run bench:monorepo [-- --runs N]: sets up what it needs, then, in a generated repository of
# 500 dbt projects and 20,000 other files, times `nx show projects` with and without the plugin
# (cold and warm) and a sparse against a full checkout of one project.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json bench/monorepo.ts "$@"
