#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need, once: node packages and a Python
# venv (.venv) with the pinned dbt. Running it again is cheap: each step is skipped while its
# inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

node_inputs=$(cat package.json package-lock.json packages/*/package.json | sha256sum | cut -d' ' -f1)
if ! stamp_ok node_modules/.setup-stamp "$node_inputs"; then
  say "installing node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$node_inputs" > node_modules/.setup-stamp
fi

python=${PYTHON:-python3}
venv_inputs=$( (cat requirements.txt; "$python" --version) | sha256sum | cut -d' ' -f1)
if ! stamp_ok .venv/.setup-stamp "$venv_inputs"; then
  say "creating .venv with dbt from requirements.txt"
  rm -rf .venv
  "$python" -m venv .venv
  # This machine's pip config names find-links folders that may not exist; its warnings are noise.
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  echo "$venv_inputs" > .venv/.setup-stamp
fi
say "ready: $(.venv/bin/dbt --version 2>/dev/null | sed -n 's/.*installed: *//p' | head -1 | sed 's/^/dbt-core /')"
