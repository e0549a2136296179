import { readdirSync } from 'node:fs';
import { withLock, safeLockName } from './lock';
import { makeTempDir, removeDir } from './testing/git-repo';

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

describe('safeLockName', () => {
  it('makes a file-system-safe name that still tells different keys apart', () => {
    const a = safeLockName('duckdb-/data/a b/warehouse.duckdb');
    const b = safeLockName('duckdb-/data/a_b/warehouse.duckdb');
    expect(a).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(a).not.toBe(b);
    expect(safeLockName('duckdb-/data/a b/warehouse.duckdb')).toBe(a);
  });
});
