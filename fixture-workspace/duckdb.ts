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
