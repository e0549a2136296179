import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { nxEnvironment, type NxResult } from '../../fixture-workspace/workspace';

/** nx started in its own process group, as a terminal job: Ctrl-Z and fg are signals to the group. */
export interface NxJob {
  /** nx's pid, which is also the group's id. */
  pid: number;
  /** nx's combined output so far. */
  output(): string;
  /** Resolves once nx's output matches `pattern`; rejects when nx ends first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` to every process of the group: nx, the task's process, git, dbt. */
  signal(signal: NodeJS.Signals): void;
  /** True until nx has exited. */
  running(): boolean;
  ended: Promise<NxResult>;
}

export function startNxJob(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): NxJob {
  const child = spawn(join(dir, 'node_modules', '.bin', 'nx'), args, {
    cwd: dir,
    env: nxEnvironment(env),
    detached: true,
  });
  let output = '';
  let exited = false;
  child.stdout.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk));
  const ended = new Promise<NxResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      resolve({ code, output });
    });
  });
  return {
    pid: child.pid!,
    output: () => output,
    async waitFor(pattern, timeoutMs = 5 * 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (exited) throw new Error(`nx ended before ${pattern} appeared:\n${output.slice(-3000)}`);
        if (Date.now() > deadline)
          throw new Error(`${pattern} did not appear in ${timeoutMs} ms:\n${output.slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    signal(signal) {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // Every process of the group has ended.
      }
    },
    running: () => !exited,
    ended,
  };
}
