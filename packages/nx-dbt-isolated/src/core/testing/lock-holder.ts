/**
 * Test-only: another process that takes a lock and a lease through core/workspace/lock.ts (run by
 * ts-node) and holds them until it is killed, for the tests that stop or kill their owner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface LockHolderProcess {
  pid: number;
  /** Resolves once the process has exited (killed). */
  exited: Promise<void>;
  child: ChildProcess;
}

/** Starts the process and resolves once it holds lock `name` in `locks` and a lease for `holder` in `leases`. */
export function startLockHolder(
  locks: string,
  name: string,
  leases: string,
  holder: string,
): Promise<LockHolderProcess> {
  const script = `
    const { withLock, holdLease } = require(${JSON.stringify(join(__dirname, '..', 'workspace', 'lock.ts'))});
    holdLease(process.argv[3], process.argv[4]).then(() =>
      withLock(process.argv[1], process.argv[2], () => {
        process.stdout.write('held\\n');
        return new Promise(() => undefined);
      }),
    );`;
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-e', script, locks, name, leases, holder],
    {
      env: { ...process.env, TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: 'commonjs' }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (data: Buffer) => {
      if (data.toString().includes('held')) resolve({ pid: child.pid!, exited, child });
    });
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before it held the lock`)));
  });
}
