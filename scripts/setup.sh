#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need, once: node packages and a Python
# venv (.venv) with the pinned dbt. Running it again is cheap: each step is skipped while its
# inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# Runs a long quiet step with a line every 15 s, so that a minute of installing does not look like a hang.
with_progress() {
  local what=$1 started=$SECONDS
  shift
  ( while sleep 15; do say "still $what ($((SECONDS - started)) s)"; done ) &
  local ticker=$!
  local status=0
  "$@" || status=$?
  kill "$ticker" 2>/dev/null
  wait "$ticker" 2>/dev/null || true
  [ "$status" -eq 0 ] && say "done $what ($((SECONDS - started)) s)"
  return "$status"
}

node_inputs=$(cat package.json package-lock.json packages/*/package.json | sha256sum | cut -d' ' -f1)
if ! stamp_ok node_modules/.setup-stamp "$node_inputs"; then
  say "installing node packages (npm ci)"
  with_progress "installing node packages" npm ci --no-audit --no-fund --loglevel=error
  echo "$node_inputs" > node_modules/.setup-stamp
fi

python=${PYTHON:-python3}
venv_inputs=$( (cat requirements.txt; "$python" --version) | sha256sum | cut -d' ' -f1)
if ! stamp_ok .venv/.setup-stamp "$venv_inputs"; then
  say "creating .venv with dbt from requirements.txt ($(grep -c '==' requirements.txt) pinned packages, about a minute)"
  rm -rf .venv
  "$python" -m venv .venv
  # This machine's pip config names find-links folders that may not exist; its warnings are noise.
  with_progress "installing dbt into .venv" .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  echo "$venv_inputs" > .venv/.setup-stamp
fi
say "ready: $(.venv/bin/dbt --version 2>/dev/null | sed -n 's/.*installed: *//p' | head -1 | sed 's/^/dbt-core /')"
