/** Test-only helper: queries on a DuckDB file through the workspace's Python duckdb, without dbt. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const PYTHON = join(__dirname, '..', '..', '..', '..', '..', '.venv', 'bin', 'python');

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

export interface DuckDbResult {
  columns: string[];
  rows: unknown[][];
}

/** Runs `queries` in order in one Python process on `file`: a fraction of a dbt process's start-up. */
export function queryDuckDb(file: string, queries: string[]): DuckDbResult[] {
  const child = spawnSync(PYTHON, ['-c', DUCKDB_RUNNER, file], { input: JSON.stringify(queries), encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`duckdb failed: ${child.stderr || child.error?.message}`);
  return JSON.parse(child.stdout) as DuckDbResult[];
}
