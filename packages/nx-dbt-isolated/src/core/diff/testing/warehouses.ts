/** Test-only helpers: real DuckDB and PostgreSQL warehouses behind a QueryRunner. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from 'pg';
import { queryDuckDb } from '../../testing/duckdb';
import { makeTempDir, removeDir } from '../../testing/git-repo';
import type { QueryResult, QueryRunner } from '../data-diff';

export interface TestWarehouse {
  run: QueryRunner;
  close(): Promise<void>;
}

/** A DuckDB file in a temporary folder; each call to `run` is a fresh python process on that file. */
export async function openDuckDb(): Promise<TestWarehouse> {
  const dir = makeTempDir('nxdiff-duckdb-');
  const file = join(dir, 'warehouse.duckdb');
  return {
    run: async (queries) => queryDuckDb(file, queries),
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
