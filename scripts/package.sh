#!/usr/bin/env bash
# Builds the plugin and writes the installable tarball dist/nx-dbt-isolated-<version>.tgz.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/packages/nx-dbt-isolated
rm -rf "$out"
npx tsc -p packages/nx-dbt-isolated/tsconfig.lib.json
cp packages/nx-dbt-isolated/package.json packages/nx-dbt-isolated/executors.json packages/nx-dbt-isolated/generators.json packages/nx-dbt-isolated/README.md "$out/"
(cd packages/nx-dbt-isolated && find src \( -name '*.json' -o -name '*.py' \) -exec cp --parents {} "../../$out/" \;)
npm pack "./$out" --pack-destination dist --silent >/dev/null
version=$(node -p "require('./packages/nx-dbt-isolated/package.json').version")
echo "dist/nx-dbt-isolated-$version.tgz"
