import { execFileSync } from 'node:child_process';
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
