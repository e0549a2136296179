import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { UserError } from '../workspace/errors';

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
 * dbt flags the plugin sets itself, with the option that sets them: the isolation check vouches
 * for a run with exactly these, so `args` may not change them.
 */
const PLUGIN_OWNED_FLAGS: Record<string, string> = {
  '--profiles-dir': 'the profilesDir option',
  '--profile': "'profile:' in dbt_project.yml",
  '--target': 'the target option',
  '-t': 'the target option',
  '--project-dir': 'the Nx project it runs for',
  '--target-path': 'the plugin (the build folder under .dot)',
  '--log-path': 'the plugin (the build folder under .dot)',
  '--vars': 'the vars option',
  '--state': 'the deferTo option',
  '--defer': 'the deferTo option',
  '--no-defer': 'the deferTo option',
  '--defer-state': 'the deferTo option',
  '--favor-state': 'the deferTo option',
  '--no-favor-state': 'the deferTo option',
  '--deprecated-defer': 'the deferTo option',
  '--deprecated-state': 'the deferTo option',
  '--deprecated-favor-state': 'the deferTo option',
};

/** Refuses `args` that would make dbt run something other than what the isolation check read. */
export function refusePluginOwnedArgs(args: string[] = []): void {
  for (const arg of args) {
    const flag = ownedFlagOf(arg);
    if (flag === undefined) continue;
    throw new UserError(
      `args holds ${flag}, which the plugin sets itself so that dbt runs exactly what the isolation check read: use ${PLUGIN_OWNED_FLAGS[flag]} instead, and remove ${flag} from args.`,
    );
  }
}

function ownedFlagOf(arg: string): string | undefined {
  const long = arg.split('=')[0];
  if (long.startsWith('--')) return long in PLUGIN_OWNED_FLAGS ? long : undefined;
  // Short options cluster and take their value attached: -t, -tprod, -xt prod.
  return /^-[A-Za-z]*t/.test(arg) ? '-t' : undefined;
}

/** Whether dbt will store every test's failures (`--store-failures` or DBT_STORE_FAILURES), whatever the tests' configs say. */
export function storesAllTestFailures(args: string[] = [], env: NodeJS.ProcessEnv = {}): boolean {
  const fromEnv = env.DBT_ENGINE_STORE_FAILURES ?? env.DBT_STORE_FAILURES;
  const envTrue = fromEnv !== undefined && !['', '0', 'false', 'f', 'no', 'n', 'off'].includes(fromEnv.toLowerCase());
  return envTrue || args.includes('--store-failures');
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
  /** Given to parse-then-run.py before the parse arguments (see claims.ts). */
  hold?: { args: string[]; onWait(): void };
}

/**
 * What a build's hold (see parse-then-run.py) runs at its end, under its lock, whatever happened:
 * strictIsolation's role is ended there, before a build waiting for the lock makes its own.
 */
export interface HoldEnd {
  atEnd: string[];
  /** Said when `atEnd` fails. */
  atEndFailure: string;
  /** PGOPTIONS for the hold's own session (the command's carry the build's role, not yet made). */
  sessionPgOptions?: string;
}

export interface ParsedRunExit extends DbtExit {
  /** False when dbt stopped while parsing. */
  parsed: boolean;
  /** The hold ran its `atEnd` statements (see parse-then-run.py). */
  ended: boolean;
}

const PARSE_THEN_RUN = join(__dirname, 'parse-then-run.py');

/**
 * Runs `dbt parse`, then `check`, then the dbt command on the manifest `check` read, in one Python
 * process (parse-then-run.py), so the command cannot run on another parse than the one checked.
 * A `check` that throws stops dbt and rethrows. `python` is the dbt's own (see requirePythonDbt).
 */
export async function runDbtParsedFirst(
  python: string,
  run: ParsedRun,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ParsedRunExit> {
  const { child, exited } = startForwardingSignals(
    python,
    [PARSE_THEN_RUN, ...(run.hold?.args ?? []), ...run.parseArgs, '--then', ...run.commandArgs],
    {
      cwd,
      env,
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    },
  );
  const channel = child.stdio[3] as Duplex;
  let parsed = false;
  let ended = false;
  let refusal: unknown;
  let checked: Promise<unknown> | undefined;
  channel.on('data', (chunk: Buffer) => {
    const lines = chunk.toString('utf8');
    if (lines.includes('waiting')) run.hold?.onWait();
    if (lines.includes('ended')) ended = true;
    if (parsed || !lines.includes('parsed')) return;
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
  return { ...exit, parsed, ended };
}

/**
 * The Python of a dbt console script, which a build needs: only a run in that Python can be
 * handed the manifest the isolation check read. A wrapper (a shell script, a pyenv shim) could
 * run anything once the check has passed, so it is refused.
 */
export function requirePythonDbt(dbt: string): string {
  const python = dbtPython(dbt);
  if (python && isExecutable(python)) return python;
  const why = python
    ? `the Python it names (${python}) is not an executable file`
    : 'it is not a Python dbt console script (its first line names no python)';
  throw new UserError(
    `dbt executable ${dbt} cannot run an isolated build: ${why}, so the plugin could not run dbt on the manifest its isolation check read; point dbtExecutable at the dbt inside a Python environment (such as .venv/bin/dbt, or what 'pyenv which dbt' prints).`,
  );
}

/** The `#!/bin/sh` launcher pip writes when the python's path is too long (bare) or has spaces (quoted). */
const SH_LAUNCHER = /^'''exec' (?:"([^"]+)"|(\S+)) "\$0" "\$@"/;

/** The python a dbt console script runs (its shebang's, or its sh launcher's); undefined for anything else. */
export function dbtPython(dbt: string): string | undefined {
  const [first = '', second = ''] = readFirstLines(dbt);
  const launcher = first.trim() === '#!/bin/sh' ? SH_LAUNCHER.exec(second) : null;
  const launched = launcher ? (launcher[1] ?? launcher[2]) : undefined;
  const interpreter = launched ?? (first.startsWith('#!') ? first.slice(2).trim().split(/\s+/)[0] : undefined);
  return interpreter && /^python[\d.]*$/.test(basename(interpreter)) ? interpreter : undefined;
}

function readFirstLines(file: string): string[] {
  const buffer = Buffer.alloc(1024);
  const fd = openSync(file, 'r');
  try {
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString('utf8').split('\n').slice(0, 2);
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

/**
 * The resources of a manifest.json that dbt can run: its nodes and, since dbt 1.11, its functions
 * (UDFs), which it keeps apart. Undefined when the file is missing or unreadable.
 */
export function readManifestResources(file: string): ManifestNode[] | undefined {
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    return [...Object.values(manifest.nodes ?? {}), ...Object.values(manifest.functions ?? {})] as ManifestNode[];
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

/** What a build writes beyond what node configs say. */
export interface WriteOptions {
  /** dbt runs with --store-failures (or DBT_STORE_FAILURES): every test stores its failures. */
  allTestFailures?: boolean;
}

/**
 * Schemas holding what the manifest says this build creates: models, seeds, snapshots and
 * functions, and the audit schema of tests that store their failures.
 */
export function schemasInManifest(file: string, options: WriteOptions = {}): string[] {
  const nodes = (readManifestResources(file) ?? []).filter((node) => writesToWarehouse(node, options));
  return [...new Set(nodes.map((node) => node.schema))].sort();
}

/** Whether running the node creates or changes something in the warehouse: a relation or a function. */
export function writesToWarehouse({ resource_type, config }: ManifestNode, options: WriteOptions = {}): boolean {
  if (resource_type === 'test') {
    return Boolean(options.allTestFailures || config?.store_failures || config?.store_failures_as);
  }
  if (resource_type === 'function') return true;
  return ['model', 'seed', 'snapshot'].includes(resource_type) && config?.materialized !== 'ephemeral';
}
