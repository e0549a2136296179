import { basename, extname, isAbsolute } from 'node:path';
import type { DbtAdapter } from './adapter';
import { genericAdapter } from './generic';

/** dbt-duckdb names the database after the file: `warehouse.duckdb` is `warehouse`. */
function databaseOfFile(path: unknown): string | undefined {
  if (path === ':memory:') return 'memory';
  if (typeof path !== 'string' || !isAbsolute(path)) return undefined;
  return basename(path, extname(path));
}

/**
 * dbt-duckdb: the warehouse is a file (its `path:`), one writer at a time, schema `main` by
 * default. Its views read relations by name and survive dbt's replace (e2e/tests/promote-rebuild.e2e.ts).
 */
export const duckdbAdapter: DbtAdapter = {
  schemaField: () => 'schema',
  defaultSchema: 'main',
  location: (output) => String(output.path),
  database: (output) => genericAdapter.database(output) ?? databaseOfFile(output.path),
  locationFields: ['database', 'schema', 'path'],
  fileField: 'path',
  replaceCascades: false,
  oneWriterAtATime: true,
  rolesAndClaims: false,
};
