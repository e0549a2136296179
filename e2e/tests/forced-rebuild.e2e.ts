import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdDuckDbOpen } from '../support/duckdb';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { git } from '../../fixture-workspace/repo';
import { killNxWhen } from '../support/kill';
import { outcome, SUCCEEDED } from '../support/outcome';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';
import { interruptNx } from '../support/workspace';

const short = (sha: string) => sha.slice(0, 8);
const HIT = /Nx read the output from the cache/;
const hits = (result: NxResult) => HIT.test(result.output);
/** The line a build prints when it failed (build/summary.ts). */
const FAILED_SUMMARY = /Isolated build failed/;
/** Printed between dbt's parse and its command: a forced rebuild stopped here has started dbt. */
const DBT_PARSED = /• dbt parse \(/;

/**
 * Issue 15, part 1: after a forced rebuild (`--skip-nx-cache`) of a cached commit that failed, was
 * stopped with Ctrl-C or was killed, the next plain build's exit code, its printed summary and
 * build.json agree, and a slim build deferring to the commit works.
 * Part 4: each of Nx's cache entries holds the one build it was made for.
 */
describe('exit code, record and cache entry agree after a forced rebuild; one build per cache entry', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  let cacheDir: string;
  const env = () => ({ NX_CACHE_DIRECTORY: cacheDir });
  const build = (ref: string, ...args: string[]) =>
    ws.nx(['run', 'analytics:isolated-build', `--ref=${ref}`, ...args], env());
  const forced = (ref: string) => ['run', 'analytics:isolated-build', `--ref=${ref}`, '--skip-nx-cache'];
  const record = (commit: string) =>
    JSON.parse(readFileSync(join(ws.dir, '.dot', short(commit), 'analytics', 'dev', 'build.json'), 'utf8'));

  /** A plain build of main that reports success: exit 0, no failure printed, record succeeded. */
  const expectPlainBuildSucceeds = async () => {
    const plain = await build('main');
    expect(outcome(plain)).toEqual(SUCCEEDED);
    expect(plain.output).not.toMatch(FAILED_SUMMARY);
    expect(record(ws.main)).toMatchObject({ commit: ws.main, status: 'succeeded' });
    return plain;
  };

  /** A slim build deferring to main finds main's build, and the next plain build of main is a hit again. */
  const expectSlimBuildDefersToMain = async () => {
    // Forced, so that each time it really looks for main's build instead of replaying a hit.
    const slim = await build('feature/vip', '--deferTo=main', '--skip-nx-cache');
    expect(outcome(slim)).toEqual(SUCCEEDED);
    expect(queryDuckDb(warehouse, `select count(*) as n from analytics_${short(ws.featureVip)}.vip_customers`)).toEqual(
      [{ n: expect.any(Number) }],
    );
    const again = await build('main');
    expect(outcome(again)).toEqual(SUCCEEDED);
    expect(hits(again)).toBe(true);
    expect(again.output).not.toMatch(FAILED_SUMMARY);
    expect(record(ws.main).status).toBe('succeeded');
  };

  beforeAll(async () => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
    cacheDir = join(ws.dir, '.nx', 'cache');
    expect(outcome(await build('main'))).toEqual(SUCCEEDED);
  }, 10 * 60_000);
  afterAll(() => ws.remove());

  it('a forced rebuild that failed (DuckDB file held open): the next plain build runs dbt and says what happened', async () => {
    const release = holdDuckDbOpen(warehouse, join(ws.dir, '.dot', 'holding'));
    let rebuilt: NxResult;
    try {
      rebuilt = await build('main', '--skip-nx-cache');
    } finally {
      release();
    }
    expect(rebuilt.code).not.toBe(0);
    expect(record(ws.main).status).toBe('failed');

    const plain = await expectPlainBuildSucceeds();
    // The failed rebuild overwrote the terminal output Nx keeps for the old entry's hash: a hit
    // there would print its failure and exit 0. The rebuild left that entry behind instead.
    expect(hits(plain)).toBe(false);
    await expectSlimBuildDefersToMain();
  });

  it('a forced rebuild stopped with Ctrl-C: the next plain build runs dbt; no message loops', async () => {
    const stopped = await interruptNx(ws.dir, forced('main'), DBT_PARSED, env());
    expect(stopped.code).not.toBe(0);
    expect(record(ws.main).status).toBe('interrupted');

    expect(hits(await expectPlainBuildSucceeds())).toBe(false);
    await expectSlimBuildDefersToMain();
  });

  it('a forced rebuild killed with SIGKILL: the next plain build builds again, not a hit that keeps a dead record', async () => {
    const killed = await killNxWhen(ws.dir, forced('main'), { output: DBT_PARSED }, env());
    expect(killed.killed).toBe(true);
    expect(record(ws.main).status).toBe('running');

    const plain = await expectPlainBuildSucceeds();
    expect(hits(plain)).toBe(false);
    expect(record(ws.main).recoveredFrom).toEqual(expect.objectContaining({ phase: 'dbt' }));
    await expectSlimBuildDefersToMain();
  });

  it('a forced slim build over the full build is refused before it writes, and the next plain build never replays the refusal', async () => {
    const before = record(ws.main);
    const refused = await build('main', `--deferTo=${ws.averagePayment}`, '--skip-nx-cache');
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('a slim build with --skip-nx-cache would replace part of it');
    expect(record(ws.main)).toEqual(before);

    const plain = await expectPlainBuildSucceeds();
    expect(plain.output).not.toContain('would replace part of it');
    expect(hits(plain)).toBe(false);
    await expectSlimBuildDefersToMain();
  });

  it('a hit after a failed build of the same commit with other options restores the succeeded build and its record', async () => {
    const release = holdDuckDbOpen(warehouse, join(ws.dir, '.dot', 'holding-select'));
    let selected: NxResult;
    try {
      selected = await build('main', '--select=stg_orders');
    } finally {
      release();
    }
    expect(selected.code).not.toBe(0);
    expect(record(ws.main).status).toBe('failed');

    const plain = await expectPlainBuildSucceeds();
    expect(hits(plain)).toBe(true);
    await expectSlimBuildDefersToMain();
  });

  it('a forced rebuild that succeeded: the next plain build reuses it with no dbt run, then hits', async () => {
    expect(outcome(await build('main', '--skip-nx-cache'))).toEqual(SUCCEEDED);
    const rebuilt = record(ws.main);

    const plain = await expectPlainBuildSucceeds();
    expect(hits(plain)).toBe(false);
    expect(plain.output).toContain(`• restored the full build of ${ws.main.slice(0, 12)}`);
    expect(record(ws.main).startedAt).toBe(rebuilt.startedAt);
    expect(hits(await build('main'))).toBe(true);
  });

  it('each Nx cache entry holds exactly the build it was made for', async () => {
    for (const commit of [ws.v1, ws.excludeReturned, ws.averagePayment]) {
      expect(outcome(await build(commit))).toEqual(SUCCEEDED);
    }
    const entries = readdirSync(cacheDir).filter((name) => existsSync(join(cacheDir, name, '.dot', 'cache')));
    expect(entries.length).toBeGreaterThanOrEqual(4);
    for (const entry of entries) {
      const staged = join(cacheDir, entry, '.dot', 'cache', 'analytics');
      const keys = readdirSync(staged);
      expect(keys).toHaveLength(1);
      // The one build is the entry's own: staged under the key it was built for.
      expect(JSON.parse(readFileSync(join(staged, keys[0], 'build.json'), 'utf8')).key).toBe(keys[0]);
    }
    // What the workspace leaves staged once Nx has cached it: nothing.
    const left = join(ws.dir, '.dot', 'cache', 'analytics');
    expect(existsSync(left) ? readdirSync(left) : []).toEqual([]);
    expect(git(ws.dir, 'status', '--porcelain')).toBe('');
  });
});
