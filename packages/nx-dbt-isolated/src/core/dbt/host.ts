import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Set to `off` to run every dbt command in a process of its own. */
export const DBT_HOST_ENV = 'NX_DBT_ISOLATED_DBT_HOST';
const HOST_SCRIPT = join(__dirname, 'host.py');
const IDLE_SECONDS = 300;
/** A host that has not started listening by then has failed: another may be started. */
const STARTING_GRACE_MS = 60_000;

export interface HostedRun {
  code: number | null;
  /** stdout and stderr, interleaved as dbt wrote them. */
  output: string;
}

/**
 * Runs `dbt <args>` in a child of the dbt host of `python` (host.py, ADR 31), which has dbt
 * imported already. Resolves undefined when no host listens yet, having started one for the
 * next command: the caller runs dbt itself this time.
 */
export function runThroughHost(
  python: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<HostedRun | undefined> {
  if (env[DBT_HOST_ENV] === 'off') return Promise.resolve(undefined);
  const socketPath = hostSocket(python, env);
  if (socketPath === undefined) return Promise.resolve(undefined);
  return new Promise((resolvePromise) => {
    const nonce = randomUUID();
    const connection = createConnection(socketPath);
    let connected = false;
    let output = '';
    connection.on('connect', () => {
      connected = true;
      // The connection stays open while the command runs: the host kills a command whose client went away.
      connection.write(JSON.stringify({ args, cwd, env, umask: process.umask(), nonce }) + '\n');
    });
    connection.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    connection.on('error', () => undefined);
    connection.on('close', () => {
      if (!connected) {
        startHost(python, socketPath, env);
        resolvePromise(undefined);
        return;
      }
      resolvePromise(endOf(output, nonce));
    });
  });
}

/** The child's output without the host's closing line, and the exit code that line gives. */
function endOf(output: string, nonce: string): HostedRun {
  const closing = new RegExp(`\\n${nonce}:(-?\\d+)\\n$`).exec(output);
  if (!closing) return { code: null, output: `${output}\nthe dbt host ended before the command did` };
  return { code: Number(closing[1]), output: output.slice(0, closing.index) };
}

/**
 * The socket of the host for this Python, its installed packages and the environment Python
 * starts with, in a folder only this user can enter (under the environment's TMPDIR); undefined
 * where there is no such folder.
 */
function hostSocket(python: string, env: NodeJS.ProcessEnv): string | undefined {
  const dir = join(env.TMPDIR || tmpdir(), `nx-dbt-isolated-${process.getuid?.() ?? 'user'}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const folder = lstatSync(dir);
    const own = folder.isDirectory() && folder.uid === process.getuid?.() && (folder.mode & 0o077) === 0;
    if (!own) return undefined;
    return join(dir, `dbt-host-${hostKey(python, env)}.sock`);
  } catch {
    return undefined;
  }
}

function hostKey(python: string, env: NodeJS.ProcessEnv): string {
  const hash = createHash('sha256').update(realpathSync(python)).update(readFileSync(HOST_SCRIPT));
  // An install or upgrade in the environment changes its site-packages folder.
  const lib = join(dirname(dirname(python)), 'lib');
  for (const version of readdirOrEmpty(lib)) {
    const sitePackages = join(lib, version, 'site-packages');
    hash.update(`${sitePackages}@${statOrUndefined(sitePackages)?.mtimeMs}`);
  }
  for (const [name, value] of Object.entries(env).sort())
    if (name.startsWith('PYTHON')) hash.update(`${name}=${value}`);
  return hash.digest('hex').slice(0, 16);
}

/** Starts a host unless another client started one a moment ago (its `.starting` mark). */
function startHost(python: string, socketPath: string, env: NodeJS.ProcessEnv): void {
  const mark = `${socketPath}.starting`;
  const since = statOrUndefined(mark)?.mtimeMs;
  if (since !== undefined && Date.now() - since < STARTING_GRACE_MS) return;
  try {
    closeSync(openSync(mark, 'w'));
    const host = spawn(python, [HOST_SCRIPT, socketPath, String(IDLE_SECONDS)], {
      cwd: dirname(socketPath),
      env,
      detached: true,
      stdio: 'ignore',
    });
    host.on('error', () => undefined);
    host.unref();
  } catch {
    // No host: every command runs dbt in a process of its own, as without one.
  }
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
