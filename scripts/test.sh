#!/usr/bin/env bash
# npm test: installs what is missing, checks format, lint and types, then runs the unit and the
# end-to-end tests (real nx, git, dbt and DuckDB) and prints 'tests: N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || exit 1
bash scripts/ensure-postgres.sh || exit 1
rm -rf test-results && mkdir -p test-results

status=0
step() {
  echo "== $1"
  shift
  "$@" || status=1
}
step "format (prettier)" npx prettier --check --log-level=warn .
step "lint (eslint)" npx eslint --max-warnings=0 .
step "types (tsc)" npm run --silent typecheck
step "unit tests" npx jest --config packages/nx-dbt-isolated/jest.config.ts --json --outputFile=test-results/unit.json
# The end-to-end suite runs against each Nx version the package supports (its peer range), each
# with its own template install: Nx 23.2.1 (the repository's own) and Nx 24.0.6.
step "end-to-end tests (Nx 23.2.1)" npx jest --config e2e/jest.config.ts --runInBand --json --outputFile=test-results/e2e.json
step "end-to-end tests (Nx 24.0.6)" env E2E_NX_VERSION=24.0.6 E2E_TEMPLATE_DIR="$PWD/tmp/e2e-template-nx24" \
  npx jest --config e2e/jest.config.ts --runInBand --json --outputFile=test-results/e2e-nx24.json
node scripts/test-summary.js test-results/unit.json test-results/e2e.json test-results/e2e-nx24.json || status=1
exit $status
