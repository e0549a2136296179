import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { UserError } from '../workspace/errors';
import { INSTALL_HINT } from './executable';

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

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
/** The dbt processes started here that still run: a stop signal is passed on to each. */
const runningDbt = new Set<ChildProcess>();
/** Scopes listening for a stop signal: each running dbt and each `stoppingGracefully` call. */
let listeningScopes = 0;
let stopRequested = false;

function passOnStop(signal: NodeJS.Signals): void {
  stopRequested = true;
  runningDbt.forEach((child) => child.kill(signal));
}

function listenForStop(): void {
  if (listeningScopes++ > 0) return;
  stopRequested = false;
  STOP_SIGNALS.forEach((signal) => process.on(signal, passOnStop));
}

function stopListening(): void {
  if (--listeningScopes > 0) return;
  STOP_SIGNALS.forEach((signal) => process.off(signal, passOnStop));
}

/**
 * Runs `work` with Ctrl-C and SIGTERM caught for all of it, not only while dbt runs: Nx sends both
 * signals, at moments of its own, and one that came after dbt had exited would end this process
 * before `work` wrote its record and released its locks. A signal is passed on to the dbt then
 * running; once one came, no dbt starts again here (its run reports `interrupted` at once).
 */
export async function stoppingGracefully<T>(work: () => Promise<T>): Promise<T> {
  listenForStop();
  try {
    return await work();
  } finally {
    stopListening();
  }
}

/**
 * Starts `executable` with Ctrl-C and SIGTERM passed on to it; `exited` settles once it has
 * exited. After a stop signal in a `stoppingGracefully` scope nothing starts: `child` is undefined.
 */
export function startForwardingSignals(executable: string, args: string[], options: SpawnOptions) {
  listenForStop();
  if (stopRequested) {
    stopListening();
    return { child: undefined, exited: Promise.resolve<DbtExit>({ code: null, signal: null, interrupted: true }) };
  }
  const child = spawn(executable, args, options);
  runningDbt.add(child);
  const done = () => {
    runningDbt.delete(child);
    stopListening();
  };
  const exited = new Promise<DbtExit>((resolvePromise, reject) => {
    child.on('error', (error) => {
      done();
      reject(new UserError(`could not start dbt (${executable}): ${error.message}; ${INSTALL_HINT}.`));
    });
    child.on('close', (code, signal) => {
      const interrupted = stopRequested;
      done();
      resolvePromise({ code, signal, interrupted });
    });
  });
  return { child, exited };
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
