#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust authentication and a
# database `test`, for the end-to-end tests that use dbt-postgres. Starts an installed server,
# or installs Debian's package first (needs root, as on CI).
set -euo pipefail

say() { printf 'postgres: %s\n' "$*"; }
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    say "PostgreSQL is not installed and this user cannot install it: install it, or run as root." >&2
    exit 1
  fi
  say "installing Debian's postgresql package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -n | tail -1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
  say "allowing trust authentication on 127.0.0.1 for the tests"
  sed -i '/^host\s\+all\s\+all\s\+127\.0\.0\.1\/32/d' "$hba"
  echo 'host all all 127.0.0.1/32 trust' >>"$hba"
  ready && pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
if ! ready; then
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { say "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
  say "creating database test"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test'
fi
