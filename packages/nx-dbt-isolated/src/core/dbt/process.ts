import { spawn, type SpawnOptions } from 'node:child_process';
import { UserError } from '../workspace/errors';
import { listenForStop, stopListening, stopRequested, whenStopped } from '../workspace/stop';
import { consoleScriptPython, INSTALL_HINT } from './executable';
import { runThroughHost } from './host';

/**
 * dbt reads deferral and state from these as from their flags (dbt 1.11 names them
 * DBT_ENGINE_*, older versions DBT_*): a user's shell that sets them would make a build or a
 * command read relations of another schema than the one the plugin checked (see args.ts).
 */
const PLUGIN_OWNED_VARIABLES = ['DEFER', 'STATE', 'DEFER_STATE', 'FAVOR_STATE'].flatMap((name) => [
  `DBT_${name}`,
  `DBT_ENGINE_${name}`,
]);

/**
 * The environment dbt runs in. DBT_TARGET would override --target (a known dbt bug), so the
 * target is passed one way only; telemetry is off unless the user asked for it.
 */
export function dbtEnvironment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...base };
  delete env.DBT_TARGET;
  for (const name of PLUGIN_OWNED_VARIABLES) delete env[name];
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
 * Starts `executable` with Ctrl-C and SIGTERM passed on to it; `exited` settles only once it has
 * exited, so callers release their locks after dbt has let go of the warehouse. After a stop signal in a `stoppingGracefully` scope (workspace/stop.ts) nothing starts: `child` is undefined.
 */
export function startForwardingSignals(executable: string, args: string[], options: SpawnOptions) {
  listenForStop();
  if (stopRequested()) {
    stopListening();
    return { child: undefined, exited: Promise.resolve<DbtExit>({ code: null, signal: null, interrupted: true }) };
  }
  const child = spawn(executable, args, options);
  const forgetChild = whenStopped((signal) => child.kill(signal));
  const done = () => {
    forgetChild();
    stopListening();
  };
  const exited = new Promise<DbtExit>((resolvePromise, reject) => {
    child.on('error', (error) => {
      done();
      reject(new UserError(`could not start dbt (${executable}): ${error.message}; ${INSTALL_HINT}.`));
    });
    child.on('close', (code, signal) => {
      const interrupted = stopRequested();
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

/**
 * Runs dbt for its output: the plugin reads what dbt prints instead of streaming it to the user.
 * pip's dbt console script runs in a child of its dbt host (host.ts) once one listens.
 */
export async function captureDbt(
  executable: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<CapturedDbt> {
  const python = consoleScriptPython(executable);
  const hosted = python ? await runThroughHost(python, args, cwd, env, whenStopped) : undefined;
  return hosted ?? captureDbtProcess(executable, args, cwd, env);
}

function captureDbtProcess(
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
