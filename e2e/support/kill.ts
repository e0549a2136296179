import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { nxEnvironment } from '../../fixture-workspace/workspace';

/** When to kill: on nx's output, or on something the test looks at every few milliseconds. */
export interface KillMoment {
  /** Kill once nx's combined output, so far, matches. */
  output?: RegExp;
  /** Kill once this returns true. */
  poll?: () => boolean;
}

export interface KilledNx {
  /** False when nx ended before the moment came. */
  killed: boolean;
  /** Milliseconds from nx's start to the kill. */
  killedAfterMs?: number;
  /** nx's combined output up to the kill. */
  output: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Starts nx in its own process group and, at `moment`, sends SIGKILL to the whole group — nx,
 * the task's process, git and dbt die at once, with no chance to clean up, as in a crash or a
 * `kill -9` of the CI job. Resolves once nx has died.
 */
export function killNxWhen(
  dir: string,
  args: string[],
  moment: KillMoment,
  env: NodeJS.ProcessEnv = {},
): Promise<KilledNx> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(join(dir, 'node_modules', '.bin', 'nx'), args, {
      cwd: dir,
      env: nxEnvironment(env),
      detached: true,
    });
    let output = '';
    let killedAfterMs: number | undefined;
    const kill = () => {
      if (killedAfterMs !== undefined || child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
        killedAfterMs = Date.now() - started;
      } catch {
        // The group has already ended: nothing was killed.
      }
    };
    const poll = moment.poll;
    const timer = poll ? setInterval(() => poll() && kill(), 2) : undefined;
    const collect = (chunk: Buffer) => {
      if (killedAfterMs !== undefined) return;
      output += chunk;
      if (moment.output?.test(output)) kill();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve({ killed: killedAfterMs !== undefined, killedAfterMs, output, code, signal });
    });
  });
}

/** Live processes (`pid args`) whose command line names `path` or whose working directory is in it. */
export function processesUsing(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      // A zombie has no command line: it holds nothing any more.
      if (args === '') continue;
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // Not ours to read, or gone.
      }
      if (args.includes(path) || cwd === path || cwd.startsWith(`${path}/`)) found.push(`${pid} ${args}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Waits until no process uses `path` (see processesUsing); returns those still left after `timeoutMs`. */
export async function waitUntilNoProcessUses(path: string, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesUsing(path);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
