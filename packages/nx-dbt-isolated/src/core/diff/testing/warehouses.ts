/** Test-only helpers: real DuckDB and PostgreSQL warehouses behind a QueryRunner. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from 'pg';
import { makeTempDir, removeDir } from '../../testing/git-repo';
import type { QueryResult, QueryRunner } from '../data-diff';

export interface TestWarehouse {
  run: QueryRunner;
  close(): Promise<void>;
}

const PYTHON = join(__dirname, '..', '..', '..', '..', '..', '..', '.venv', 'bin', 'python');

/** Reads a JSON list of queries on stdin, runs them in the DuckDB file given as argument, prints the results. */
const DUCKDB_RUNNER = `
import duckdb, json, sys
connection = duckdb.connect(sys.argv[1])
results = []
for query in json.load(sys.stdin):
    connection.execute(query)
    described = connection.description is not None
    results.append({
        'columns': [column[0] for column in connection.description] if described else [],
        'rows': connection.fetchall() if described else [],
    })
json.dump(results, sys.stdout, default=str)
`;

/** A DuckDB file in a temporary folder; each call to `run` is a fresh python process on that file. */
export async function openDuckDb(): Promise<TestWarehouse> {
  const dir = makeTempDir('nxdiff-duckdb-');
  const file = join(dir, 'warehouse.duckdb');
  return {
    run: async (queries) => {
      const child = spawnSync(PYTHON, ['-c', DUCKDB_RUNNER, file], {
        input: JSON.stringify(queries),
        encoding: 'utf8',
      });
      if (child.status !== 0) throw new Error(`duckdb failed: ${child.stderr || child.error?.message}`);
      return JSON.parse(child.stdout) as QueryResult[];
    },
    close: async () => removeDir(dir),
  };
}

/** The test PostgreSQL server: 127.0.0.1:5432, user postgres with trust auth, database test. */
export async function openPostgres(): Promise<TestWarehouse> {
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  await client.connect();
  return {
    run: async (queries) => {
      const results: QueryResult[] = [];
      for (const text of queries) {
        const result = await client.query({ text, rowMode: 'array' });
        results.push({ columns: (result.fields ?? []).map((field) => field.name), rows: result.rows ?? [] });
      }
      return results;
    },
    close: () => client.end(),
  };
}

/** A schema-name prefix of its own for one test. */
export function specSchemaPrefix(): string {
  return `nxdiff_spec_${randomBytes(4).toString('hex')}`;
}
