import { existsSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { executeDuckDb, schemasIn } from '../support/duckdb';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { git, commitBeside } from '../../fixture-workspace/repo';
import { worktreeList } from '../support/git-health';
import { killNxWhen, waitUntilNoProcessUses } from '../support/kill';
import { outcome, SUCCEEDED } from '../support/outcome';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

/** The schemas a build of the fixture lands in: the base, marts/finance and the seeds (`raw`). */
const buildSchemas = (commit: string) =>
  [`analytics_${short(commit)}`, `analytics_${short(commit)}_finance`, `analytics_${short(commit)}_raw`].sort();

// The tests run in order on one workspace, each starting from the builds the one before left.
describe('clean removes everything the plugin left, and only that (DuckDB)', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  const build = (ref: string, ...args: string[]) => ws.nx(['run', 'analytics:isolated-build', `--ref=${ref}`, ...args]);
  const clean = (...args: string[]) => ws.nx(['run', 'analytics:clean', ...args]);
  const dot = (...path: string[]) => join(ws.dir, '.dot', ...path);
  const worktrees = () => worktreeList(ws.dir).map((entry) => entry.path);
  const schemasOf = (commit: string) => schemasIn(warehouse, `analytics_${short(commit)}`);
  const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
  /** A commit of main's tree with `files` changed or `removed`, on its own branch. */
  const commitOf = (name: string, files: Record<string, string>, removed: string[] = []) =>
    commitBeside(ws.dir, ws.main, `leftovers/${name}`, `Leftovers: ${name}`, files, removed);

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(() => ws.remove());

  it.each([
    ['no project at that commit', () => commitOf('no-project', {}, ['analytics/dbt_project.yml']), []],
    ['a broken dbt_project.yml', () => commitOf('broken', { 'analytics/dbt_project.yml': 'name: [analytics\n' }), []],
    ['an unknown --target', () => commitOf('unknown-target', { 'leftovers.txt': 'x' }), ['--target=nope']],
  ])(
    'removes the checkout a build that failed before its record left (%s), though the policy cleans nothing',
    async (_case, commitFor, args) => {
      if (!existsSync(dot(short(ws.excludeReturned)))) expectSuccess(await build(ws.excludeReturned));
      const commit = commitFor();
      const failed = await build(commit, ...(args as string[]));
      expect(failed.code).not.toBe(0);
      // What the build left: a checkout and its registration, and no record.
      expect({ left: entries(dot(short(commit))), output: failed.output.slice(-1500) }).toMatchObject({
        left: ['checkout.json', 'worktree'],
      });
      expect(worktrees()).toContain(dot(short(commit), 'worktree'));
      const schemasBefore = schemasIn(warehouse, 'analytics');

      const cleaned = await clean('--keep=5');
      expectSuccess(cleaned);
      expect(cleaned.output).toMatch(/Cleaned 0 build/);
      expect(cleaned.output).toContain(`removed .dot/${short(commit)}, a checkout no recorded build uses`);
      expect(existsSync(dot(short(commit)))).toBe(false);
      expect(worktrees()).toEqual([ws.dir, dot(short(ws.excludeReturned), 'worktree')]);
      expect(existsSync(dot(short(ws.excludeReturned), 'analytics', 'dev', 'build.json'))).toBe(true);
      expect(schemasIn(warehouse, 'analytics')).toEqual(schemasBefore);
    },
  );

  it('the next build, of another commit, removes the checkout a failed build left', async () => {
    const broken = commitOf('broken-again', { 'analytics/dbt_project.yml': 'name: [analytics\n' });
    expect((await build(broken)).code).not.toBe(0);
    expect(worktrees()).toContain(dot(short(broken), 'worktree'));
    const next = await build(ws.averagePayment);
    expectSuccess(next);
    expect(next.output).toContain(`removed .dot/${short(broken)}, a checkout no recorded build uses`);
    expect(existsSync(dot(short(broken)))).toBe(false);
    expect(worktrees()).toEqual(
      [ws.dir, dot(short(ws.excludeReturned), 'worktree'), dot(short(ws.averagePayment), 'worktree')].sort(),
    );
  });

  it('--keep=N keeps the N newest unprotected builds, plus the protected ones', async () => {
    // v1.0 (a tag: protected) is built last, a feature build just before it.
    expectSuccess(await build(ws.featureVip));
    expectSuccess(await build('v1.0'));
    const cleaned = await clean('--keep=1');
    expectSuccess(cleaned);
    expect(schemasOf(ws.featureVip)).toEqual(buildSchemas(ws.featureVip));
    expect(schemasOf(ws.v1)).toEqual(buildSchemas(ws.v1));
    // Older than the feature build, unprotected: cleaned.
    expect(schemasOf(ws.averagePayment)).toEqual([]);
    expect(schemasOf(ws.excludeReturned)).toEqual([]);
    expect(worktrees()).toEqual([ws.dir, dot(short(ws.v1), 'worktree'), dot(short(ws.featureVip), 'worktree')].sort());
  });

  it('cleans a build whose generated profile a killed clean removed, says which schemas were absent, and fails only a build it cannot reach', async () => {
    // The dev builds the --keep test kept: feature/vip's, and v1.0's, which gets a ci build too.
    const [dropped, profileless] = [ws.featureVip, ws.v1];
    expectSuccess(await build(profileless, '--target=ci'));
    // What a clean killed in the middle of `rm -r` of a build's folder leaves: no profile.
    rmSync(dot(short(profileless), 'analytics', 'dev', 'profiles'), { recursive: true });
    rmSync(dot(short(profileless), 'analytics', 'ci', 'profiles'), { recursive: true });
    // And a schema someone dropped by hand.
    executeDuckDb(warehouse, `drop schema analytics_${short(dropped)}_finance cascade`);

    const cleaned = await clean(`--ref=${dropped}`, `--ref=${profileless}`);
    expect(cleaned.code).not.toBe(0);
    expect(cleaned.output).not.toMatch(/Invalid value for '--profiles-dir'/);
    expect(cleaned.output).toMatch(/Cleaned 2 build\(s\), kept \d+, failed 1/);
    expect(schemasOf(dropped)).toEqual([]);
    expect(schemasOf(profileless)).toEqual([]);
    const finance = `analytics_${short(dropped)}_finance`;
    expect(cleaned.output).toContain(
      `cleaned ${short(dropped)} (dev): dropped analytics_${short(dropped)}, analytics_${short(dropped)}_raw; already absent: ${finance};`,
    );
    expect(cleaned.output).not.toMatch(new RegExp(`dropped [^\\n;]*${finance}`));
    expect(cleaned.output).toContain(
      `failed ${short(profileless)} (ci): the generated profile of build ${short(profileless)} (ci) is gone or unusable`,
    );
    expect(existsSync(dot(short(dropped)))).toBe(false);
    expect(existsSync(dot(short(profileless), 'analytics', 'dev'))).toBe(false);
    expect(existsSync(dot(short(profileless), 'analytics', 'ci', 'build.json'))).toBe(true);

    // As the line says: drop by hand (the ci file is its warehouse), then clean without schemas.
    const removed = await clean(`--ref=${profileless}`, '--target=ci', '--schemas=false');
    expectSuccess(removed);
    expect(existsSync(dot(short(profileless)))).toBe(false);
    expect(worktrees()).not.toContain(dot(short(profileless), 'worktree'));
  });

  it('a clean killed with kill -9 while it holds its lock leaves nothing that makes the next one wait, and the next removes what it left', async () => {
    expectSuccess(await build(ws.averagePayment));
    const tmp = dot('tmp');
    const operationRunning = () => entries(tmp).some((name) => name.startsWith('operation-'));
    const killed = await killNxWhen(ws.dir, ['run', 'analytics:clean', `--ref=${ws.averagePayment}`], {
      poll: operationRunning,
    });
    expect({ killed: killed.killed, output: killed.killed ? '' : killed.output.slice(-3000) }).toEqual({
      killed: true,
      output: '',
    });
    expect(await waitUntilNoProcessUses(ws.dir)).toEqual([]);
    const left = entries(tmp).filter((name) => name.startsWith('operation-'));
    expect(left).toHaveLength(1);
    // The commit's lock, named by its sha, is still there.
    expect(entries(dot('locks')).some((name) => name.startsWith(ws.averagePayment) && name.endsWith('.lock'))).toBe(
      true,
    );
    // A folder is taken for abandoned once its lease's owner is gone and it is 10 s old: make it
    // 11 s old rather than wait.
    const elevenSecondsAgo = new Date(Date.now() - 11_000);
    utimesSync(join(tmp, left[0]), elevenSecondsAgo, elevenSecondsAgo);

    const again = await clean(`--ref=${ws.averagePayment}`);
    expectSuccess(again);
    expect(again.output).not.toMatch(/wait/i);
    expect(again.output).toContain(`removed .dot/tmp/${left[0]}, left by an operation whose process is gone`);
    expect(schemasOf(ws.averagePayment)).toEqual([]);
    expect(existsSync(dot(short(ws.averagePayment)))).toBe(false);
    expect(entries(tmp)).toEqual([]);
  });

  it('removes the lease of a build killed with kill -9 and the drop notes of commits git no longer has', async () => {
    const gone = commitOf('gone', { 'analytics/models/marts/gone.sql': 'select 1 as one\n' });
    expectSuccess(await build(gone));
    expectSuccess(await clean(`--ref=${gone}`));
    expect(entries(dot('dropped', 'analytics'))).toContain(`${gone}.json`);
    git(ws.dir, 'branch', '-q', '-D', 'leftovers/gone');
    git(ws.dir, 'reflog', 'expire', '--expire=now', '--all');
    git(ws.dir, 'gc', '--quiet', '--prune=now');

    const leases = dot('locks', 'leases', ws.averagePayment);
    const killed = await killNxWhen(ws.dir, ['run', 'analytics:isolated-build', `--ref=${ws.averagePayment}`], {
      output: /Running with dbt/,
    });
    expect(killed.killed).toBe(true);
    expect(await waitUntilNoProcessUses(ws.dir)).toEqual([]);
    expect(entries(leases)).toHaveLength(1);

    const cleaned = await clean('--keep=5');
    expectSuccess(cleaned);
    expect(cleaned.output).toContain('removed 1 lease(s) of builds whose process is gone');
    expect(cleaned.output).toContain(`removed .dot/dropped/analytics/${gone}.json`);
    expect(existsSync(leases)).toBe(false);
    expect(entries(dot('dropped', 'analytics'))).not.toContain(`${gone}.json`);
    // The killed build is kept (--keep=5), with its checkout.
    expect(existsSync(dot(short(ws.averagePayment), 'analytics', 'dev', 'build.json'))).toBe(true);
    expect(worktrees()).toContain(dot(short(ws.averagePayment), 'worktree'));
  });
});

describe('clean of builds on PostgreSQL whose generated profile is gone', () => {
  const base = `nxdbt_leftovers_${randomBytes(4).toString('hex')}`;
  const env = { ANALYTICS_PG_SCHEMA: base };
  let ws: TestWorkspace;
  const pgSchemas = (commit: string) =>
    [`${base}_${short(commit)}`, `${base}_${short(commit)}_finance`, `${base}_${short(commit)}_raw`].sort();

  beforeAll(() => {
    ws = createTestWorkspace();
  });
  afterAll(async () => {
    await dropSchemasStartingWith(base);
    ws.remove();
  });

  it("releases the claims and drops the schemas of a build whose profile is gone through another build's profile", async () => {
    const build = (commit: string) => ws.nx(['run', 'analytics:isolated-build', `--ref=${commit}`, '--target=pg'], env);
    expectSuccess(await build(ws.excludeReturned));
    expectSuccess(await build(ws.averagePayment));
    for (const commit of [ws.excludeReturned, ws.averagePayment]) {
      expect(await schemasStartingWith(`${base}_${short(commit)}`)).toEqual(pgSchemas(commit));
    }
    // The newest build's profile is gone: it was the one a clean connected with.
    rmSync(join(ws.dir, '.dot', short(ws.averagePayment), 'analytics', 'pg', 'profiles'), { recursive: true });
    await withPostgres((client) => client.query(`drop schema "${base}_${short(ws.averagePayment)}_raw" cascade`));

    const cleaned = await ws.nx(
      ['run', 'analytics:clean', `--ref=${ws.excludeReturned}`, `--ref=${ws.averagePayment}`, '--target=pg'],
      env,
    );
    expectSuccess(cleaned);
    expect(cleaned.output).toMatch(/Cleaned 2 build/);
    expect(cleaned.output).toContain(`already absent: ${base}_${short(ws.averagePayment)}_raw`);
    expect(await schemasStartingWith(base)).toEqual([]);
    for (const commit of [ws.excludeReturned, ws.averagePayment]) {
      expect(existsSync(join(ws.dir, '.dot', short(commit)))).toBe(false);
      expect(worktreeList(ws.dir).map((entry) => entry.path)).not.toContain(
        join(ws.dir, '.dot', short(commit), 'worktree'),
      );
    }
  });
});
