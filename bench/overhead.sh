#!/usr/bin/env bash
# npm run bench:overhead [-- --runs N]: sets up what it needs, then times the plugin's overhead:
# nx run against bare dbt and Nx's floor (daemon off and on), inference on 500 dbt projects
# against a do-nothing plugin, and the pre-task hook with 10 and 500 projects.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx ts-node --transpile-only --project e2e/tsconfig.json bench/overhead.ts "$@"
