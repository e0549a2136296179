import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { queryDuckDb, queryDuckDbAll } from '../../fixture-workspace/duckdb';
import { VENV_BIN } from '../../fixture-workspace/paths';

const relationsSql = (schemaPrefix: string) =>
  `select table_schema || '.' || table_name as relation from information_schema.tables
   where starts_with(table_schema, '${schemaPrefix.replace(/'/g, "''")}') order by 1`;

/** Tables and views per schema, as `schema.name`, sorted. */
export function relationsIn(file: string, schemaPrefix: string): string[] {
  return queryDuckDb<{ relation: string }>(file, relationsSql(schemaPrefix)).map((row) => row.relation);
}

const EXECUTE_SCRIPT = `
import duckdb, sys
con = duckdb.connect(sys.argv[1])
for statement in sys.argv[2:]:
    con.execute(statement)
con.close()
`;

/** Runs statements against a DuckDB file, in one writing connection: for a test that puts something there. */
export function executeDuckDb(file: string, ...statements: string[]): void {
  execFileSync(join(VENV_BIN, 'python'), ['-c', EXECUTE_SCRIPT, file, ...statements], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

const schemasSql = (prefix: string) =>
  `select distinct schema_name as name from information_schema.schemata
   where starts_with(schema_name, '${prefix.replace(/'/g, "''")}') order by 1`;

/** Schemas whose names start with `prefix`, sorted. */
export function schemasIn(file: string, prefix: string): string[] {
  return queryDuckDb<{ name: string }>(file, schemasSql(prefix)).map((row) => row.name);
}

/** What schemasIn and relationsIn give for `prefix`, read in one process. */
export function schemasAndRelationsIn(file: string, prefix: string): { schemas: string[]; relations: string[] } {
  const [schemas, relations] = queryDuckDbAll<{ name?: string; relation?: string }>(file, [
    schemasSql(prefix),
    relationsSql(prefix),
  ]);
  return { schemas: schemas.map((row) => row.name!), relations: relations.map((row) => row.relation!) };
}

/**
 * Starts a Python process that opens `file` for writing with DuckDB and keeps it open, as a
 * notebook would; returns what ends it. Waits until the file is open.
 */
export function holdDuckDbOpen(file: string, readyFile: string): () => void {
  const script = `import duckdb, pathlib, sys, time\ncon = duckdb.connect(sys.argv[1])\npathlib.Path(sys.argv[2]).touch()\ntime.sleep(600)\n`;
  const holder = spawn(join(VENV_BIN, 'python'), ['-c', script, file, readyFile], { stdio: 'ignore' });
  const deadline = Date.now() + 60_000;
  while (!existsSync(readyFile)) {
    if (Date.now() > deadline || holder.exitCode !== null) throw new Error(`could not hold ${file} open`);
    execFileSync('sleep', ['0.2']);
  }
  return () => holder.kill();
}
