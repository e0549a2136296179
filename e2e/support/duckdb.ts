import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { VENV_BIN } from './paths';

const QUERY_SCRIPT = `
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
cur = con.execute(sys.argv[2])
names = [d[0] for d in cur.description]
print(json.dumps([dict(zip(names, row)) for row in cur.fetchall()], default=str))
`;

/** Reads a DuckDB file with the duckdb package of the test venv: what the warehouse really holds. */
export function queryDuckDb<Row = Record<string, unknown>>(file: string, sql: string): Row[] {
  const out = execFileSync(join(VENV_BIN, 'python'), ['-c', QUERY_SCRIPT, file, sql], { encoding: 'utf8' });
  return JSON.parse(out) as Row[];
}

/** Tables and views per schema, as `schema.name`, sorted. */
export function relationsIn(file: string, schemaPrefix: string): string[] {
  return queryDuckDb<{ relation: string }>(
    file,
    `select table_schema || '.' || table_name as relation from information_schema.tables
     where starts_with(table_schema, '${schemaPrefix.replace(/'/g, "''")}') order by 1`,
  ).map((row) => row.relation);
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

/** Schemas whose names start with `prefix`, sorted. */
export function schemasIn(file: string, prefix: string): string[] {
  return queryDuckDb<{ name: string }>(
    file,
    `select distinct schema_name as name from information_schema.schemata
     where starts_with(schema_name, '${prefix.replace(/'/g, "''")}') order by 1`,
  ).map((row) => row.name);
}
