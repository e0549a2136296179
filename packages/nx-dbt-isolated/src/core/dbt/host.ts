import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { sitePackagesOf } from './executable';

/** Set to `off` to run every dbt command in a process of its own. */
export const DBT_HOST_ENV = 'NX_DBT_ISOLATED_DBT_HOST';
const HOST_SCRIPT = join(__dirname, 'host.py');
const HOST_CLIENT = join(__dirname, 'host-client.py');
const IDLE_SECONDS = 300;
/** A host that has not started listening by then has failed: another may be started. */
const STARTING_GRACE_MS = 60_000;
const MAX_SOCKET_PATH_BYTES = 100;
/**
 * What the host reads once, when it starts (dbt's import reads DBT_PACKAGE_HUB_URL, for `dbt
 * deps`): a client whose values differ needs a host of its own.
 */
const HOST_START_VARIABLES = ['HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'DBT_PACKAGE_HUB_URL'];

export interface HostedRun {
  code: number | null;
  /** stdout and stderr, interleaved as dbt wrote them. */
  output: string;
}

/**
 * Runs `dbt <args>` in a child of the dbt host of `python` (host.py, ADR 31), which has dbt
 * imported already. Resolves undefined when no host took the command (one is started for the
 * next command when none listens): the caller runs dbt itself this time. `whenStopped` tells of
 * Ctrl-C, which stops the command as it would stop a dbt of the caller's own.
 */
export function runThroughHost(
  python: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  whenStopped: (stop: () => void) => () => void = () => () => undefined,
): Promise<HostedRun | undefined> {
  if (env[DBT_HOST_ENV] === 'off') return Promise.resolve(undefined);
  const socketPath = hostSocket(python, env);
  if (socketPath === undefined) return Promise.resolve(undefined);
  return new Promise((resolvePromise) => {
    const nonce = randomUUID();
    const connection = createConnection(socketPath);
    let connected = false;
    let stopped = false;
    const chunks: Buffer[] = [];
    // Ctrl-C: the host stops the command of a client that went away.
    const forgetStop = whenStopped(() => {
      stopped = true;
      connection.destroy();
    });
    connection.on('connect', () => {
      connected = true;
      // The connection stays open while the command runs: the host stops a command whose client went away.
      connection.write(JSON.stringify({ args, cwd, env, umask: process.umask(), nonce }) + '\n');
    });
    connection.on('data', (chunk: Buffer) => chunks.push(chunk));
    connection.on('error', () => undefined);
    connection.on('close', () => {
      forgetStop();
      if (!connected) startHost(python, socketPath, env);
      const said = Buffer.concat(chunks).toString('utf8');
      // Stopped before the host took the command: nothing ran, and nothing may start now.
      const refused = stopped && !said.startsWith(acceptedLine(nonce));
      if (refused) resolvePromise({ code: null, output: 'stopped by a signal before dbt started' });
      else resolvePromise(connected ? endOf(said, nonce) : undefined);
    });
  });
}

/**
 * The arguments to give `python` before `<script> <args>` so that the script runs in a child of
 * its dbt host (host-client.py, ADR 31) with this command's descriptors 0 to 3, environment and
 * folder. Undefined when the host is off, off Linux, or none listens (one is started for the next command):
 * the caller runs the script itself.
 */
export function hostedScriptArgs(python: string, env: NodeJS.ProcessEnv): string[] | undefined {
  // The host learns that a client is stopped (Ctrl-Z) from /proc, which only Linux has.
  if (env[DBT_HOST_ENV] === 'off' || process.platform !== 'linux') return undefined;
  const socketPath = hostSocket(python, env);
  if (socketPath === undefined) return undefined;
  if (hostRuns(socketPath)) return ['-I', '-S', HOST_CLIENT, socketPath];
  startHost(python, socketPath, env);
  return undefined;
}

/** Whether the process that wrote the socket's pid file (host.py) is alive: a killed host leaves its socket. */
function hostRuns(socketPath: string): boolean {
  try {
    const pid = Number(readFileSync(`${socketPath}.pid`, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The host's first line: it took the command and forks a child for it. */
const acceptedLine = (nonce: string) => `${nonce}:accepted\n`;

/**
 * What the host said: undefined when it did not accept the command (nothing ran: the caller runs
 * dbt itself), else the child's output without the lines around it, and the exit code its closing
 * line gives.
 */
function endOf(said: string, nonce: string): HostedRun | undefined {
  const accepted = acceptedLine(nonce);
  if (!said.startsWith(accepted)) return undefined;
  const output = said.slice(accepted.length);
  const closing = new RegExp(`\\n${nonce}:(-?\\d+)\\n`).exec(output);
  if (!closing) return { code: null, output: `${output}\nthe dbt host ended before the command did` };
  return { code: Number(closing[1]), output: output.slice(0, closing.index) };
}

/**
 * The socket of the host for this Python, its installed packages and the environment Python
 * starts with, in a folder only this user can enter (under the environment's TMPDIR); undefined
 * where there is no such folder.
 */
function hostSocket(python: string, env: NodeJS.ProcessEnv): string | undefined {
  if (process.getuid === undefined) return undefined;
  const dir = join(resolve(env.TMPDIR || tmpdir()), `nx-dbt-isolated-${process.getuid()}`);
  const socketPath = join(dir, `dbt-host-${hostKey(python, env)}.sock`);
  // The system's limit for a socket's path is 104 bytes on macOS, 108 on Linux.
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) return undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const folder = lstatSync(dir);
    const own = folder.isDirectory() && folder.uid === process.getuid() && (folder.mode & 0o077) === 0;
    return own ? socketPath : undefined;
  } catch {
    return undefined;
  }
}

function hostKey(python: string, env: NodeJS.ProcessEnv): string {
  const hash = createHash('sha256')
    .update(realpathSync(python))
    .update(readFileSync(HOST_SCRIPT))
    .update(readFileSync(HOST_CLIENT));
  // An install or upgrade in the environment changes its site-packages folder.
  for (const dir of sitePackagesOf(python)) hash.update(`${dir}@${statOrUndefined(dir)?.mtimeMs}`);
  for (const [name, value] of Object.entries(env).sort()) {
    if (name.startsWith('PYTHON') || HOST_START_VARIABLES.includes(name)) hash.update(`${name}=${value}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Starts a host unless another client started one a moment ago (its `.starting` mark). */
function startHost(python: string, socketPath: string, env: NodeJS.ProcessEnv): void {
  const mark = `${socketPath}.starting`;
  const since = statOrUndefined(mark)?.mtimeMs;
  if (since !== undefined && Date.now() - since < STARTING_GRACE_MS) return;
  try {
    rmSync(mark, { force: true });
    closeSync(openSync(mark, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW));
    // Why a host failed to start, for whoever looks: clients only see that none listens.
    const log = openSync(
      `${socketPath}.log`,
      constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY | constants.O_NOFOLLOW,
      0o600,
    );
    const host = spawn(python, [HOST_SCRIPT, socketPath, String(IDLE_SECONDS)], {
      cwd: dirname(socketPath),
      env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    host.on('error', () => undefined);
    host.unref();
  } catch {
    // No host: every command runs dbt in a process of its own, as without one.
  }
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
