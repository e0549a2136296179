import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { UserError } from './errors';

export const DBT_COMMANDS = ['build', 'run', 'seed', 'test', 'snapshot', 'compile'] as const;
export type DbtCommand = (typeof DBT_COMMANDS)[number];

const INSTALL_HINT =
  "install it with 'python3 -m venv .venv && .venv/bin/pip install dbt-core dbt-duckdb' in the workspace root, or set the executor option dbtExecutable";

/** Finds dbt: the executor option, else `<workspaceRoot>/.venv/bin/dbt`, else `dbt` on PATH. */
export function findDbt(workspaceRoot: string, option: string | undefined, pathEnv = process.env.PATH ?? ''): string {
  if (option) {
    const candidate =
      isAbsolute(option) || option.includes('/') ? resolve(workspaceRoot, option) : findOnPath(option, pathEnv);
    if (candidate && isExecutable(candidate)) return candidate;
    throw new UserError(
      `dbt executable '${option}' (dbtExecutable option) is not an executable file: fix the path, or ${INSTALL_HINT.replace(', or set the executor option dbtExecutable', '')}.`,
    );
  }
  const venvDbt = join(workspaceRoot, '.venv', 'bin', 'dbt');
  if (isExecutable(venvDbt)) return venvDbt;
  const onPath = findOnPath('dbt', pathEnv);
  if (onPath) return onPath;
  throw new UserError(`dbt was not found in ${join(workspaceRoot, '.venv/bin')} nor on PATH: ${INSTALL_HINT}.`);
}

function findOnPath(name: string, pathEnv: string): string | undefined {
  return pathEnv
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(isExecutable);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface DbtSelection {
  select?: string[];
  exclude?: string[];
  selector?: string;
  /** YAML or JSON text, as dbt's --vars takes it. */
  vars?: string;
  threads?: number;
  fullRefresh?: boolean;
  extraArgs?: string[];
}

export interface DbtLocations {
  projectDir: string;
  profilesDir: string;
  target: string;
  targetPath: string;
  logPath: string;
}

/** The argument list of one dbt command; nothing here goes through a shell. */
export function dbtArgs(command: string, where: DbtLocations, selection: DbtSelection = {}): string[] {
  const args = [
    command,
    '--project-dir',
    where.projectDir,
    '--profiles-dir',
    where.profilesDir,
    '--target',
    where.target,
    '--target-path',
    where.targetPath,
    '--log-path',
    where.logPath,
  ];
  if (selection.select?.length) args.push('--select', ...selection.select);
  if (selection.exclude?.length) args.push('--exclude', ...selection.exclude);
  if (selection.selector) args.push('--selector', selection.selector);
  if (selection.vars) args.push('--vars', selection.vars);
  if (selection.threads !== undefined) args.push('--threads', String(selection.threads));
  if (selection.fullRefresh) args.push('--full-refresh');
  args.push(...(selection.extraArgs ?? []));
  return args;
}

/**
 * The environment dbt runs in. DBT_TARGET would override --target (a known dbt bug), so the
 * target is passed one way only; telemetry is off unless the user asked for it.
 */
export function dbtEnvironment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...base };
  delete env.DBT_TARGET;
  env.DBT_SEND_ANONYMOUS_USAGE_STATS ??= 'false';
  return env;
}

export interface DbtExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when this process was asked to stop (Ctrl-C) while dbt ran. */
  interrupted: boolean;
}

/**
 * Runs dbt with its output streamed live. Ctrl-C or SIGTERM sent to this process is passed on
 * to dbt, and the promise settles only once dbt has exited, so callers release their locks
 * after dbt has let go of the warehouse.
 */
export function runDbt(executable: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<DbtExit> {
  return startForwardingSignals(executable, args, { cwd, env, stdio: 'inherit' }).exited;
}

function startForwardingSignals(executable: string, args: string[], options: SpawnOptions) {
  const child = spawn(executable, args, options);
  let interrupted = false;
  const forward = (signal: NodeJS.Signals) => {
    interrupted = true;
    child.kill(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  signals.forEach((signal) => process.on(signal, forward));
  const detach = () => signals.forEach((signal) => process.off(signal, forward));
  const exited = new Promise<DbtExit>((resolvePromise, reject) => {
    child.on('error', (error) => {
      detach();
      reject(new UserError(`could not start dbt (${executable}): ${error.message}; ${INSTALL_HINT}.`));
    });
    child.on('close', (code, signal) => {
      detach();
      resolvePromise({ code, signal, interrupted });
    });
  });
  return { child, exited };
}

export interface ParsedRun {
  /** `parse` with the build's locations. */
  parseArgs: string[];
  /** The dbt command to run on that parse. */
  commandArgs: string[];
  /** Called once dbt has parsed and written the manifest: throws (or rejects) to stop before the command runs. */
  check(): void | Promise<void>;
}

export interface ParsedRunExit extends DbtExit {
  /** False when dbt stopped while parsing. */
  parsed: boolean;
}

const PARSE_THEN_RUN = join(__dirname, 'parse-then-run.py');

/**
 * Runs `dbt parse`, then `check`, then the dbt command. Where dbt is a Python console script both
 * run in one Python process on one parse (parse-then-run.py), which costs no more than the
 * command alone; otherwise as two dbt runs. A `check` that throws stops dbt and rethrows.
 */
export async function runDbtParsedFirst(
  executable: string,
  run: ParsedRun,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ParsedRunExit> {
  const python = dbtPython(executable);
  if (!python || !isExecutable(python)) return runParseThenCommand(executable, run, cwd, env);
  const { child, exited } = startForwardingSignals(
    python,
    [PARSE_THEN_RUN, ...run.parseArgs, '--then', ...run.commandArgs],
    {
      cwd,
      env,
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    },
  );
  const channel = child.stdio[3] as Duplex;
  let parsed = false;
  let refusal: unknown;
  let checked: Promise<unknown> | undefined;
  channel.on('data', (chunk: Buffer) => {
    if (parsed || !chunk.toString('utf8').includes('parsed')) return;
    parsed = true;
    checked = Promise.resolve()
      .then(() => run.check())
      .then(
        () => channel.write('go\n'),
        (error: unknown) => {
          refusal = error;
          channel.write('stop\n');
        },
      );
  });
  channel.on('error', () => undefined);
  const exit = await exited;
  // dbt may have been stopped while an asynchronous check still ran: let it finish first.
  await checked;
  if (refusal !== undefined) throw refusal;
  return { ...exit, parsed };
}

async function runParseThenCommand(
  executable: string,
  run: ParsedRun,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ParsedRunExit> {
  const parse = await runDbt(executable, run.parseArgs, cwd, env);
  if (parse.code !== 0 || parse.interrupted) return { ...parse, parsed: false };
  await run.check();
  return { ...(await runDbt(executable, run.commandArgs, cwd, env)), parsed: true };
}

/** The python a dbt console script names in its shebang; undefined for anything else. */
export function dbtPython(dbt: string): string | undefined {
  const firstLine = readFirstLine(dbt);
  const interpreter = firstLine.startsWith('#!') ? firstLine.slice(2).trim().split(/\s+/)[0] : undefined;
  return interpreter && /^python[\d.]*$/.test(basename(interpreter)) ? interpreter : undefined;
}

function readFirstLine(file: string): string {
  const buffer = Buffer.alloc(512);
  const fd = openSync(file, 'r');
  try {
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString('utf8').split('\n')[0];
  } finally {
    closeSync(fd);
  }
}

export interface CapturedDbt {
  code: number | null;
  /** stdout and stderr, interleaved as dbt wrote them. */
  output: string;
}

/** Runs dbt for its output: the plugin reads what dbt prints instead of streaming it to the user. */
export function captureDbt(
  executable: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<CapturedDbt> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(executable, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => (output += chunk.toString('utf8'));
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error) =>
      reject(new UserError(`could not start dbt (${executable}): ${error.message}; ${INSTALL_HINT}.`)),
    );
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

export interface RunResultsSummary {
  /** Count of results per status: success, pass, error, fail, skipped, warn… */
  byStatus: Record<string, number>;
  /** The same per resource type (model, test, seed, snapshot…): `{ model: { success: 7 } }`. */
  byType: Record<string, Record<string, number>>;
  /** Node ids that errored or failed, with dbt's message. */
  failures: { node: string; message: string }[];
}

export function summarizeRunResults(file: string): RunResultsSummary | undefined {
  let results: { unique_id: string; status: string; message?: string | null }[];
  try {
    results = JSON.parse(readFileSync(file, 'utf8')).results ?? [];
  } catch {
    return undefined;
  }
  const byStatus: Record<string, number> = {};
  const byType: Record<string, Record<string, number>> = {};
  for (const { unique_id, status } of results) {
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const type = (byType[unique_id.split('.')[0]] ??= {});
    type[status] = (type[status] ?? 0) + 1;
  }
  const failures = results
    .filter((result) => result.status === 'error' || result.status === 'fail')
    .map((result) => ({ node: result.unique_id, message: result.message ?? '' }));
  return { byStatus, byType, failures };
}

export interface ManifestNode {
  unique_id: string;
  name: string;
  alias?: string;
  resource_type: string;
  database?: string | null;
  schema: string;
  config?: { materialized?: string; store_failures?: boolean | null; store_failures_as?: string | null };
}

/** The nodes of a manifest.json; undefined when it is missing or unreadable. */
export function readManifestNodes(file: string): ManifestNode[] | undefined {
  try {
    return Object.values(JSON.parse(readFileSync(file, 'utf8')).nodes ?? {});
  } catch {
    return undefined;
  }
}

export interface ManifestSource {
  unique_id: string;
  database?: string | null;
  schema: string;
  identifier: string;
}

/** The sources of a manifest.json: the relations the project reads without building them. */
export function readManifestSources(file: string): ManifestSource[] {
  try {
    return Object.values(JSON.parse(readFileSync(file, 'utf8')).sources ?? {});
  } catch {
    return [];
  }
}

/**
 * Schemas holding the relations the manifest says this build materialises: models, seeds and
 * snapshots, and the audit schema of tests that store their failures.
 */
export function schemasInManifest(file: string): string[] {
  const nodes = (readManifestNodes(file) ?? []).filter(writesRelation);
  return [...new Set(nodes.map((node) => node.schema))].sort();
}

/** Whether running the node creates or changes a relation. */
export function writesRelation({ resource_type, config }: ManifestNode): boolean {
  if (resource_type === 'test') return Boolean(config?.store_failures) || Boolean(config?.store_failures_as);
  return ['model', 'seed', 'snapshot'].includes(resource_type) && config?.materialized !== 'ephemeral';
}
