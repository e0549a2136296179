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
# with its own template install: Nx 23.2.1 (the repository's own) and Nx 24.0.6. The two run side
# by side (ADR 17): each keeps one test at a time, mostly waiting on one nx or dbt process, so on
# two cores they take about the time of one. Their output is shown once both have ended.
echo "== end-to-end tests (Nx 23.2.1 and Nx 24.0.6, side by side)"
tarball=$(bash scripts/package.sh | tail -n 1) || status=1
export E2E_TARBALL="$PWD/$tarball"
npx jest --config e2e/jest.config.ts --runInBand --json --outputFile=test-results/e2e.json \
  > test-results/e2e-nx23.log 2>&1 &
nx23=$!
env E2E_NX_VERSION=24.0.6 E2E_TEMPLATE_DIR="$PWD/tmp/e2e-template-nx24" \
  npx jest --config e2e/jest.config.ts --runInBand --json --outputFile=test-results/e2e-nx24.json \
  > test-results/e2e-nx24.log 2>&1 &
nx24=$!
wait "$nx23" || status=1
wait "$nx24" || status=1
for version in 23 24; do
  echo "== end-to-end tests (Nx $version)"
  cat "test-results/e2e-nx$version.log"
done
node scripts/test-summary.js test-results/unit.json test-results/e2e.json test-results/e2e-nx24.json || status=1
exit $status
