#!/usr/bin/env bash
# npm run demo: sets up what it needs, then builds the fixture dbt project at two refs through a
# real `nx run` into one DuckDB file and prints where each build landed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json scripts/demo.ts
