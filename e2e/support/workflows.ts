import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { git } from '../../fixture-workspace/repo';
import { withPostgres } from './postgres';
import { installedWorkspace, nxEnvironment, type TestWorkspace } from '../../fixture-workspace/workspace';

/** An nx run with its two streams apart: what a script piping `--format=json` into `jq` would read. */
export interface SplitNxResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Both streams, in the order they came. */
  output: string;
}

/** Runs the nx CLI of the workspace in `dir`, keeping stdout and stderr apart. */
export function runNxSplit(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<SplitNxResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(dir, 'node_modules', '.bin', 'nx'), args, { cwd: dir, env: nxEnvironment(env) });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      output += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
      output += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, output }));
  });
}

/**
 * The JSON object a task printed on stdout, between Nx's own header and footer: from the first
 * `{` that opens a line to the `}` after which the rest parses as nothing but Nx's summary.
 * Throws when stdout holds no JSON object.
 */
export function jsonObjectIn(stdout: string): unknown {
  const start = stdout.search(/^\s*\{/m);
  if (start < 0) throw new Error(`no JSON object on stdout:\n${stdout}`);
  const text = stdout.slice(start);
  for (let end = text.lastIndexOf('}'); end > 0; end = text.lastIndexOf('}', end - 1)) {
    try {
      return JSON.parse(text.slice(0, end + 1));
    } catch {
      // Not the closing brace yet: try the one before.
    }
  }
  throw new Error(`stdout holds no complete JSON object:\n${stdout}`);
}

/**
 * A `git clone` of the fixture workspace with the plugin linked in: the same commits, so the same
 * short hashes and schema names, but its own `.dot`, Nx cache and DuckDB file. A full build
 * there is what a slim build here is compared with.
 */
export function cloneTestWorkspace(from: TestWorkspace): TestWorkspace {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-e2e-clone-')));
  git(from.dir, 'clone', '-q', from.dir, dir);
  git(dir, 'config', 'user.name', 'Fixture Author');
  git(dir, 'config', 'user.email', 'fixture@example.com');
  git(dir, 'config', 'commit.gpgsign', 'false');
  const { v1, excludeReturned, averagePayment, main, featureVip } = from;
  return { dir, v1, excludeReturned, averagePayment, main, featureVip, ...installedWorkspace(dir) };
}

/** A file of the fixture project as a commit has it. */
export function fileAt(dir: string, commit: string, path: string): string {
  return git(dir, 'show', `${commit}:${path}`) + '\n';
}

/** The record of a build: `.dot/<id>/<project>/<dbt target>/build.json`. */
export function readBuildRecord(
  workspaceDir: string,
  commit: string,
  dbtTarget = 'dev',
  project = 'analytics',
): Record<string, unknown> & { status?: string } {
  return JSON.parse(readFileSync(buildRecordPath(workspaceDir, commit, dbtTarget, project), 'utf8'));
}

export function buildRecordPath(
  workspaceDir: string,
  commit: string,
  dbtTarget = 'dev',
  project = 'analytics',
): string {
  return join(workspaceDir, '.dot', commit.slice(0, 8), project, dbtTarget, 'build.json');
}

export function hasBuildRecord(workspaceDir: string, commit: string, dbtTarget = 'dev'): boolean {
  return existsSync(buildRecordPath(workspaceDir, commit, dbtTarget));
}

/**
 * Rows in an order that does not depend on the warehouse: each row as JSON, sorted. Numbers and
 * decimals are compared as the text the driver gives them.
 */
export function canonicalRows(rows: Record<string, unknown>[]): string[] {
  return rows
    .map((row) =>
      JSON.stringify(
        Object.fromEntries(
          Object.entries(row).map(([column, value]) => [
            column,
            value instanceof Date ? value.toISOString().slice(0, 10) : value === null ? null : String(value),
          ]),
        ),
      ),
    )
    .sort();
}

/** Every row of `relation` (already quoted as needed) on the test PostgreSQL server. */
export function postgresRows(relation: string): Promise<Record<string, unknown>[]> {
  return withPostgres(async (client) => (await client.query(`select * from ${relation}`)).rows);
}

/** Tables and views in the schemas starting with `prefix`, as `schema.name (type)`, sorted. */
export function postgresRelations(prefix: string): Promise<string[]> {
  return withPostgres(async (client) => {
    const result = await client.query<{ relation: string }>(
      `select table_schema || '.' || table_name || ' (' || table_type || ')' as relation
       from information_schema.tables where starts_with(table_schema, $1) order by 1`,
      [prefix],
    );
    return result.rows.map((row) => row.relation);
  });
}

/** `"a"` for a, with quotes inside doubled. */
export const quoted = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

/** Every file under `folder`, by its path relative to it (with `/`), and its text. */
export function filesUnder(folder: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[relative(folder, full).split('\\').join('/')] = readFileSync(full, 'utf8');
    }
  };
  walk(folder);
  return files;
}
