#!/usr/bin/env bash
# npm run bench:slim [-- --runs N]: sets up what it needs, then, in a generated dbt project of 85
# models, times a slim build of a one-model change (--deferTo the base commit's isolated build)
# against a full isolated build and a bare dbt build of the same commit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json bench/slim-build.ts "$@"
