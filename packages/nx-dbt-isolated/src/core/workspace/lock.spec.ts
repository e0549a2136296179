import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  holdLease,
  ifLockFree,
  ifStopped,
  liveLeaseHolders,
  liveLeases,
  removeAbandonedLeases,
  withLock,
  LockWaitAbandoned,
  safeLockName,
  type LockOwner,
} from './lock';
import { BuildInterrupted } from './errors';
import { stoppingGracefully } from './stop';
import { makeTempDir, removeDir } from '../testing/git-repo';
import { startLockHolder, type LockHolderProcess } from '../testing/lock-holder';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise to hold work open until the test lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** Resolves once `condition` holds, checking every few milliseconds. */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('withLock', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it('gives up waiting once Ctrl-C or SIGTERM came in a stoppingGracefully scope, leaving the holder alone', async () => {
    const holderGate = gate();
    let waiting = false;
    const holder = withLock(dir, 'build', () => holderGate.opened.then(() => 'held'));
    const waiter = stoppingGracefully(() =>
      withLock(dir, 'build', async () => 'should not run', { onWait: () => (waiting = true) }),
    );
    await until(() => waiting);
    process.emit('SIGINT', 'SIGINT');
    const stopped = await waiter.catch((error: unknown) => error);
    expect(stopped).toBeInstanceOf(BuildInterrupted);
    expect((stopped as Error).message).toBe(
      'stopped by a signal during the wait for lock build; run the build again to finish it.',
    );
    holderGate.open();
    await expect(holder).resolves.toBe('held');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('gives up waiting once abandonWhen turns true, without running the work or touching the holder', async () => {
    const holderGate = gate();
    let waiting = false;
    let abandoned = false;
    const holder = withLock(dir, 'duckdb-x', () => holderGate.opened.then(() => 'held'));
    const waiter = withLock(dir, 'duckdb-x', async () => 'should not run', {
      onWait: () => (waiting = true),
      abandonWhen: () => abandoned,
    });
    await until(() => waiting);
    abandoned = true;
    await expect(waiter).rejects.toBeInstanceOf(LockWaitAbandoned);
    holderGate.open();
    await expect(holder).resolves.toBe('held');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('returns what the work returns and leaves no lock behind', async () => {
    await expect(withLock(dir, 'build', async () => 42)).resolves.toBe(42);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('never lets two holders of the same lock overlap, and tells the waiting one once', async () => {
    const events: string[] = [];
    const firstGate = gate();
    const waits = { first: 0, second: 0 };

    const first = withLock(
      dir,
      'git-worktrees',
      async () => {
        events.push('first:enter');
        await firstGate.opened;
        events.push('first:exit');
        return 'first';
      },
      { onWait: () => waits.first++ },
    );
    await until(() => events.includes('first:enter'));

    const second = withLock(
      dir,
      'git-worktrees',
      async () => {
        events.push('second:enter');
        events.push('second:exit');
        return 'second';
      },
      { onWait: () => waits.second++ },
    );
    await until(() => waits.second > 0);
    await sleep(700); // longer than a poll: the second must still be waiting
    expect(events).toEqual(['first:enter']);

    firstGate.open();
    await expect(Promise.all([first, second])).resolves.toEqual(['first', 'second']);
    expect(events).toEqual(['first:enter', 'first:exit', 'second:enter', 'second:exit']);
    expect(waits).toEqual({ first: 0, second: 1 });
  });

  it('serialises many concurrent holders', async () => {
    let inside = 0;
    let mostInside = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2].map((index) =>
        withLock(dir, 'duckdb-/data/warehouse.duckdb', async () => {
          inside++;
          mostInside = Math.max(mostInside, inside);
          await sleep(50);
          order.push(index);
          inside--;
        }),
      ),
    );
    expect(mostInside).toBe(1);
    expect([...order].sort()).toEqual([0, 1, 2]);
  });

  it('lets holders of different locks run at the same time', async () => {
    const events: string[] = [];
    const firstGate = gate();
    const first = withLock(dir, 'deps-a', async () => {
      events.push('a:enter');
      await firstGate.opened;
      events.push('a:exit');
    });
    await until(() => events.includes('a:enter'));
    const onWait = jest.fn();
    await withLock(dir, 'deps-b', async () => void events.push('b:enter'), { onWait });
    firstGate.open();
    await first;
    expect(events).toEqual(['a:enter', 'b:enter', 'a:exit']);
    expect(onWait).not.toHaveBeenCalled();
  });

  it('releases the lock when the work throws', async () => {
    const failure = new Error('dbt crashed');
    await expect(
      withLock(dir, 'build', async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(readdirSync(dir)).toEqual([]);

    const onWait = jest.fn();
    await expect(withLock(dir, 'build', async () => 'next', { onWait })).resolves.toBe('next');
    expect(onWait).not.toHaveBeenCalled();
  });
});

describe('locks and leases of other processes', () => {
  let dir: string;
  let leases: string;
  let holder: LockHolderProcess | undefined;
  beforeEach(() => {
    dir = makeTempDir();
    leases = join(dir, 'leases');
  });
  afterEach(async () => {
    if (holder && holder.child.exitCode === null && holder.child.signalCode === null) {
      process.kill(holder.pid, 'SIGKILL');
      await holder.exited;
    }
    holder = undefined;
    removeDir(dir);
  }, 30_000);

  const lockFile = (name: string) => join(dir, `${safeLockName(name)}.lock`);
  const leaseFile = (name: string) => join(leases, `${name}.${randomUUID()}.lease`);
  const owner = (fields: Partial<LockOwner>): LockOwner => ({
    pid: process.pid,
    host: hostname(),
    token: randomUUID(),
    ...fields,
  });
  /** Writes a lock or lease file as a process would, last refreshed `ageMs` ago. */
  function writeOwner(file: string, record: LockOwner, ageMs = 0) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, JSON.stringify(record));
    const then = new Date(Date.now() - ageMs);
    utimesSync(file, then, then);
  }
  const takes = (name: string, timeoutMs: number) => withLock(dir, name, async () => 'taken', { timeoutMs });

  it('keeps the lock and the lease of a stopped (Ctrl-Z) process, however long it has been quiet', async () => {
    holder = await startLockHolder(dir, 'duckdb-/data/w.duckdb', leases, 'analytics');
    process.kill(holder.pid, 'SIGSTOP');
    // The signal takes effect a moment after it is sent, later on a loaded machine.
    while (!(await liveLeases(leases))[0]?.owner.stopped) await sleep(5);
    // Quiet for an hour as the files' times tell it, which is all that ages a lock or a lease:
    // longer than the 20 s after which the old locks went stale, and than OTHER_HOST_STALE_MS.
    const anHourAgo = new Date(Date.now() - 60 * 60_000);
    for (const file of [lockFile('duckdb-/data/w.duckdb'), ...readdirSync(leases).map((name) => join(leases, name))]) {
      utimesSync(file, anHourAgo, anHourAgo);
    }

    const onWait = jest.fn();
    await expect(
      withLock(dir, 'duckdb-/data/w.duckdb', async () => 'taken', { timeoutMs: 1_500, onWait }),
    ).rejects.toThrow(
      `timed out after 2 s waiting for lock duckdb-/data/w.duckdb, held by process ${holder.pid} on ${hostname()}, which is stopped (resume it with fg or kill -CONT ${holder.pid}): let that process finish or end it, then run this again.`,
    );
    expect(onWait).toHaveBeenCalledWith({ pid: holder.pid, host: hostname(), stopped: true });
    expect(ifStopped(onWait.mock.calls[0][0])).toBe(
      `, held by process ${holder.pid} on ${hostname()}, which is stopped (resume it with fg or kill -CONT ${holder.pid})`,
    );
    expect(ifStopped({ pid: holder.pid, host: hostname(), stopped: false })).toBe('');
    await expect(liveLeases(leases)).resolves.toEqual([
      { holder: 'analytics', owner: { pid: holder.pid, host: hostname(), stopped: true } },
    ]);
    process.kill(holder.pid, 'SIGCONT');
  }, 90_000);

  it('takes over the lock of a killed process at once, and its lease no longer counts', async () => {
    holder = await startLockHolder(dir, 'commit-abc', leases, 'analytics');
    await expect(liveLeaseHolders(leases)).resolves.toEqual(['analytics']);
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;

    const started = Date.now();
    await expect(takes('commit-abc', 60_000)).resolves.toBe('taken');
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(liveLeaseHolders(leases)).resolves.toEqual([]);
  }, 60_000);

  it("ifLockFree runs nothing while a live process holds the lock, and takes a killed one's at once", async () => {
    holder = await startLockHolder(dir, 'commit-abc', leases, 'analytics');
    await expect(ifLockFree(dir, 'commit-abc', async () => 'ran')).resolves.toBeUndefined();
    expect(removeAbandonedLeases(leases)).toBe(0);
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;

    await expect(ifLockFree(dir, 'commit-abc', async () => 'ran')).resolves.toBe('ran');
    expect(existsSync(lockFile('commit-abc'))).toBe(false);
    expect(removeAbandonedLeases(leases)).toBe(1);
    expect(readdirSync(leases)).toEqual([]);
  }, 60_000);

  it('takes over the lock of a process on another host only once it has not been refreshed for 10 minutes', async () => {
    const elsewhere = owner({ host: 'another-host', pid: 1 });
    writeOwner(lockFile('build'), elsewhere, 9 * 60_000);
    writeOwner(leaseFile('analytics'), elsewhere, 9 * 60_000);
    await expect(takes('build', 1_000)).rejects.toThrow('waiting for lock build, held by process 1 on another-host:');
    await expect(liveLeaseHolders(leases)).resolves.toEqual(['analytics']);

    writeOwner(lockFile('build'), elsewhere, 11 * 60_000);
    writeOwner(leaseFile('finance'), elsewhere, 11 * 60_000);
    await expect(takes('build', 1_000)).resolves.toBe('taken');
    await expect(liveLeaseHolders(leases)).resolves.toEqual(['analytics']);
  });

  it('takes over a lock whose pid now belongs to another process (another start time)', async () => {
    const reused = owner({ startTime: '1' });
    writeOwner(lockFile('build'), reused);
    writeOwner(leaseFile('analytics'), reused);
    await expect(takes('build', 1_000)).resolves.toBe('taken');
    await expect(liveLeaseHolders(leases)).resolves.toEqual([]);
  });

  it('keeps the lock of a live process of this host', async () => {
    const release = await holdLease(leases, 'analytics');
    await withLock(dir, 'build', async () => {
      await expect(takes('build', 1_000)).rejects.toThrow(
        `waiting for lock build, held by process ${process.pid} on ${hostname()}:`,
      );
    });
    await expect(liveLeaseHolders(leases)).resolves.toEqual(['analytics']);
    await release();
    await expect(liveLeaseHolders(leases)).resolves.toEqual([]);
    expect(readdirSync(dir)).toEqual(['leases']);
  });

  it('refreshes a held lock every minute for contenders on other hosts, and warns once another took it over (not when its folder is gone)', async () => {
    // Only the refresh timer is faked: the file system and the clock stay real.
    jest.useFakeTimers({
      doNotFake: [
        'Date',
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'setImmediate',
        'clearImmediate',
        'setTimeout',
        'clearTimeout',
      ],
    });
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await withLock(dir, 'build', async () => {
        const longAgo = new Date(Date.now() - 11 * 60_000);
        utimesSync(lockFile('build'), longAgo, longAgo);
        jest.advanceTimersByTime(60_000);
        expect(Date.now() - statSync(lockFile('build')).mtimeMs).toBeLessThan(5_000);

        writeOwner(lockFile('build'), owner({ host: 'another-host' }));
        jest.advanceTimersByTime(60_000);
        expect(warn).toHaveBeenCalledWith('nx-dbt-isolated: lock build was taken over by another process');
      });
      expect(existsSync(lockFile('build'))).toBe(true);
      await withLock(dir, 'gone', async () => {
        removeDir(dir);
        jest.advanceTimersByTime(60_000);
      });
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
      jest.useRealTimers();
    }
  });

  it('takes over a lock without a readable owner (an older version left a directory) once it is 10 s old', async () => {
    mkdirSync(lockFile('build'));
    await expect(takes('build', 1_000)).rejects.toThrow(
      'timed out after 1 s waiting for lock build, held by another process:',
    );
    const then = new Date(Date.now() - 11_000);
    utimesSync(lockFile('build'), then, then);
    await expect(takes('build', 1_000)).resolves.toBe('taken');
  });
});

describe('safeLockName', () => {
  it('makes a file-system-safe name that still tells different keys apart', () => {
    const a = safeLockName('duckdb-/data/a b/warehouse.duckdb');
    const b = safeLockName('duckdb-/data/a_b/warehouse.duckdb');
    expect(a).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(a).not.toBe(b);
    expect(safeLockName('duckdb-/data/a b/warehouse.duckdb')).toBe(a);
  });
});
