import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { VENV_BIN } from './paths';

const QUERY_SCRIPT = `
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
answers = []
for sql in sys.argv[2:]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    answers.append([dict(zip(names, row)) for row in cur.fetchall()])
print(json.dumps(answers, default=str))
`;

/** Reads a DuckDB file with the duckdb package of the test venv: what the warehouse really holds. */
export function queryDuckDb<Row = Record<string, unknown>>(file: string, sql: string): Row[] {
  return queryDuckDbAll<Row>(file, [sql])[0];
}

/**
 * The answers to several reads of a DuckDB file, in order, from one Python process and one
 * connection: each Python start-up with duckdb costs a few tenths of a second.
 */
export function queryDuckDbAll<Row = Record<string, unknown>>(file: string, sqls: string[]): Row[][] {
  if (sqls.length === 0) return [];
  const out = execFileSync(join(VENV_BIN, 'python'), ['-c', QUERY_SCRIPT, file, ...sqls], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out) as Row[][];
}

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
