#!/usr/bin/env bash
# npm test: installs what is missing, checks format, lint and types, then runs the unit and the
# end-to-end tests (real nx, git, dbt and DuckDB) and prints 'tests: N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || exit 1
bash scripts/ensure-postgres.sh || exit 1
echo "-- setup: $SECONDS s"
rm -rf test-results && mkdir -p test-results

status=0
step() {
  local name=$1 started=$SECONDS
  echo "== $name"
  shift
  "$@" || status=1
  echo "-- $name: $((SECONDS - started)) s"
}
step "format (prettier)" npx prettier --check --log-level=warn .
step "lint (eslint)" npx eslint --max-warnings=0 .
step "types (tsc)" npm run --silent typecheck
# Two workers: on two cores jest would run in band, one spec at a time waiting on its dbt, git or
# PostgreSQL, which leaves a core idle for most of the warehouse specs.
step "unit tests" npx jest --config packages/nx-dbt-isolated/jest.config.ts --maxWorkers=2 --json \
  --outputFile=test-results/unit.json
# The end-to-end suite (ADR 28): every file on Nx 23.2.1 (the repository's own), the files of
# e2e/nx-versions.json on Nx 24.0.6 too, each version with its own template install, spread over
# two runs side by side. Each test's start and end show as it happens; jest's output follows.
tarball=$(bash scripts/package.sh | tail -n 1) || status=1
export E2E_TARBALL="$PWD/$tarball"
step "end-to-end tests" node scripts/e2e-run.js
echo "-- npm test: $SECONDS s"
node scripts/test-summary.js test-results/unit.json test-results/e2e*.json || status=1
exit $status
