/** Test-only helper: a connection through the workspace's real dbt to a warehouse of the tests. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WarehouseConnection } from '../dbt/operation';

const DBT = join(__dirname, '..', '..', '..', '..', '..', '.venv', 'bin', 'dbt');

/** Writes `<dir>/profiles.yml` with one target, `output` (a dbt target's fields), and connects with it. */
export function dbtConnection(dir: string, output: Record<string, string | number>): WarehouseConnection {
  const fields = Object.entries(output).map(([key, value]) => `      ${key}: ${JSON.stringify(value)}\n`);
  writeFileSync(join(dir, 'profiles.yml'), `nx_spec:\n  target: spec\n  outputs:\n    spec:\n${fields.join('')}`);
  return { workspaceRoot: dir, dbt: DBT, profilesDir: dir, profile: 'nx_spec', target: 'spec', env: process.env };
}

/** The DuckDB file of `duckDbConnection(dir)`. */
export function duckDbFile(dir: string): string {
  return join(dir, 'spec.duckdb');
}

/** A DuckDB file in `dir`. */
export function duckDbConnection(dir: string): WarehouseConnection {
  return dbtConnection(dir, { type: 'duckdb', path: duckDbFile(dir), schema: 'main' });
}

/** The test PostgreSQL server (127.0.0.1:5432, trust auth, database test), connecting as `user` into `schema`. */
export function postgresConnection(
  dir: string,
  schema: string,
  { user = 'postgres', ...extra }: Record<string, string | number> = {},
): WarehouseConnection {
  return dbtConnection(dir, {
    type: 'postgres',
    host: '127.0.0.1',
    port: 5432,
    user,
    password: '',
    dbname: 'test',
    schema,
    ...extra,
  });
}
