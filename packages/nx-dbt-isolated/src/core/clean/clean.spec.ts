import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { commitLockName, ensureCheckout } from '../git/checkout';
import { schemasDroppedToken } from '../cache/key-marks';
import { executeClean, existingSchemas, planClean, type CleanRequest, type PlannedBuild } from './clean';
import type { CleanSelector } from './policy';
import { buildPaths, ensureDotFolder, locksDir } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { withLock } from '../workspace/lock';
import { readBuildRecord, workspaceId, writeBuildRecord, type BuildRecord } from '../build/records';
import { buildRecord } from '../testing/build-record';
import { startLockHolder } from '../testing/lock-holder';
import { writeFakeWarehouseDbt, type FakeWarehouse } from '../testing/fake-warehouse-dbt';
import { makeTempDir, makeTempRepo, removeDir, writeFiles, type TempRepo } from '../testing/git-repo';

const POSTGRES = { type: 'postgres', location: '127.0.0.1:5432/test' };
const PROFILE = 'analytics:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      schema: "analytics_x"\n';
const quiet = { info: () => undefined };

describe('clean', () => {
  let repo: TempRepo;
  /** Outside the repository: commits there must not carry the fake dbt in or out of the working tree. */
  let fakeDir: string;
  let warehouse: FakeWarehouse;
  /** Commits on main, oldest first: the first is tagged v1.0 and the last is main's tip. */
  let commits: string[];
  let minutes = 0;

  beforeEach(() => {
    repo = makeTempRepo();
    commits = ['one', 'two', 'three', 'four'].map((name) =>
      repo.commit(name, {
        'analytics/dbt_project.yml': 'name: analytics\nprofile: analytics\n',
        [`${name}.txt`]: name,
      }),
    );
    repo.git('tag', 'v1.0', commits[0]);
    ensureDotFolder(repo.root);
    fakeDir = makeTempDir();
    warehouse = writeFakeWarehouseDbt(fakeDir, []);
    minutes = 0;
  });
  afterEach(() => {
    repo.cleanup();
    removeDir(fakeDir);
  });

  const id = (commit: string) => commit.slice(0, 8);
  const ownSchemas = (commit: string) => [`analytics_${id(commit)}`, `analytics_${id(commit)}_finance`];

  /** A build of `commit` as isolatedBuild leaves it: checkout, generated profile, artifacts, record. */
  async function recordBuild(commit: string, overrides: Partial<BuildRecord> = {}) {
    const project = overrides.project ?? 'analytics';
    const checkout = await ensureCheckout(repo.root, repo.root, commit, { holder: project });
    await checkout.release();
    const paths = buildPaths(repo.root, checkout.buildId, project, overrides.target ?? 'dev');
    writeFiles(paths.profilesDir, { 'profiles.yml': PROFILE });
    writeFiles(paths.targetPath, { 'manifest.json': '{"nodes": {}}' });
    const startedAt = new Date(Date.UTC(2026, 10, 1, 0, minutes++)).toISOString();
    const record = buildRecord({
      commit,
      buildId: checkout.buildId,
      profile: 'analytics',
      warehouse: POSTGRES,
      schema: `analytics_${checkout.buildId}`,
      schemas: ownSchemas(commit),
      builtBy: workspaceId(repo.root),
      startedAt,
      endedAt: startedAt,
      ...overrides,
    });
    writeBuildRecord(paths.buildRecord, record);
    return paths;
  }

  const request = (selector: CleanSelector, overrides: Partial<CleanRequest> = {}): CleanRequest => ({
    workspaceRoot: repo.root,
    project: 'analytics',
    promoteTarget: 'promote',
    selector,
    protect: ['main', 'master', 'refs/tags'],
    dropSchemas: true,
    dbtExecutable: warehouse.dbt,
    env: process.env,
    now: new Date('2026-11-24T00:00:00.000Z'),
    ...overrides,
  });
  const clean = async (selector: CleanSelector, overrides: Partial<CleanRequest> = {}) => {
    const plan = await planClean(request(selector, overrides));
    return { plan, outcomes: await executeClean(plan, request(selector, overrides), quiet) };
  };
  const planned = (builds: PlannedBuild[], commit: string) => builds.find(({ record }) => record.commit === commit)!;
  const worktrees = () => repo.git('worktree', 'list', '--porcelain');
  const byRef = (...refs: string[]): CleanSelector => ({ kind: 'refs', refs });

  it("drops the build's own schemas and nothing else, then removes its folder and checkout", async () => {
    const lookalikes = [`analytics_${id(commits[1])}_lookalike`, `analytics_${id(commits[1])}x`, 'analytics'];
    warehouse = writeFakeWarehouseDbt(fakeDir, [...ownSchemas(commits[1]), ...ownSchemas(commits[2]), ...lookalikes]);
    const paths = await recordBuild(commits[1], { schemas: [...ownSchemas(commits[1]), 'analytics'] });
    const other = await recordBuild(commits[2]);

    const { plan, outcomes } = await clean(byRef(commits[1]));
    expect(planned(plan.builds, commits[1])).toMatchObject({
      decision: { clean: true, reason: `named by --ref=${commits[1]}` },
      schemas: ownSchemas(commits[1]),
      keptSchemas: [{ schema: 'analytics', reason: `not under analytics_${id(commits[1])}` }],
    });
    expect(outcomes.map(({ status, detail }) => [status, detail])).toEqual([
      ['cleaned', `dropped ${ownSchemas(commits[1]).join(', ')}; removed .dot/${id(commits[1])}/analytics/dev`],
    ]);
    expect(warehouse.schemas().sort()).toEqual([...ownSchemas(commits[2]), ...lookalikes].sort());
    expect(existsSync(paths.commitDir)).toBe(false);
    expect(worktrees()).not.toContain(paths.worktree);
    expect(worktrees()).toContain(other.worktree);
    expect(existsSync(other.buildRecord)).toBe(true);
    expect(schemasDroppedToken(repo.root, 'analytics', commits[1])).toEqual(expect.any(String));
    expect(schemasDroppedToken(repo.root, 'analytics', commits[2])).toBeUndefined();
  });

  it('says of each schema whether it dropped it or found it already absent', async () => {
    const [whole, half, gone] = [commits[1], commits[2], commits[3]];
    warehouse = writeFakeWarehouseDbt(fakeDir, [...ownSchemas(whole), `analytics_${id(half)}`]);
    for (const commit of [whole, half, gone]) await recordBuild(commit);
    const lines: string[] = [];
    const plan = await planClean(request(byRef(whole, half, gone)));
    const outcomes = await executeClean(plan, request(byRef(whole, half, gone)), { info: (line) => lines.push(line) });
    const detailOf = (commit: string) => outcomes.find(({ build }) => build.record.commit === commit)!.detail;
    expect(detailOf(whole)).toBe(`dropped ${ownSchemas(whole).join(', ')}; removed .dot/${id(whole)}/analytics/dev`);
    expect(detailOf(half)).toBe(
      `dropped analytics_${id(half)}; already absent: analytics_${id(half)}_finance; removed .dot/${id(half)}/analytics/dev`,
    );
    expect(detailOf(gone)).toBe(
      `dropped no schema; already absent: ${ownSchemas(gone).join(', ')}; removed .dot/${id(gone)}/analytics/dev`,
    );
    const droppedLine = lines.find((line) => line.trim().startsWith('dropped'))!;
    for (const schema of ownSchemas(gone)) expect(droppedLine).not.toContain(schema);
    expect(warehouse.schemas()).toEqual([]);
  });

  it('connects with a usable generated profile of the same warehouse when a build has lost its own, and fails only the build none can reach', async () => {
    const [gone, cut, whole, alone] = commits;
    warehouse = writeFakeWarehouseDbt(fakeDir, commits.flatMap(ownSchemas));
    const gonePaths = await recordBuild(gone);
    const cutPaths = await recordBuild(cut);
    const wholePaths = await recordBuild(whole);
    const alonePaths = await recordBuild(alone, { target: 'prod' });
    // What a clean killed in the middle of removing a build's folder leaves.
    rmSync(gonePaths.profilesDir, { recursive: true });
    writeFileSync(join(cutPaths.profilesDir, 'profiles.yml'), 'analytics:\n  target: d');
    // The only build against prod, whose profile (written for dev) cannot reach it.

    const { outcomes } = await clean(byRef(gone, cut, whole, alone));
    const outcomeOf = (commit: string) => outcomes.find(({ build }) => build.record.commit === commit)!;
    for (const commit of [gone, cut, whole]) expect(outcomeOf(commit).status).toBe('cleaned');
    expect(warehouse.calls()[0]).toEqual(expect.arrayContaining(['--profiles-dir', wholePaths.profilesDir]));
    expect(existsSync(gonePaths.commitDir)).toBe(false);
    expect(outcomeOf(alone)).toMatchObject({
      status: 'failed',
      detail: `the generated profile of build ${id(alone)} (prod) is gone or unusable (${join(alonePaths.profilesDir, 'profiles.yml')}: no output prod of profile 'analytics'), so its schemas cannot be reached: drop analytics_${id(alone)}* by hand, then clean it with --schemas=false.`,
    });
    expect(warehouse.schemas()).toEqual(ownSchemas(alone));
    expect(existsSync(alonePaths.buildRecord)).toBe(true);
  });

  it('removes the checkout a build that failed before its record left, whatever the policy selects', async () => {
    const kept = await recordBuild(commits[1]);
    const failed = await ensureCheckout(repo.root, repo.root, commits[2], { holder: 'analytics' });
    await failed.release();
    const lines: string[] = [];
    const plan = await planClean(request({ kind: 'filters', keep: 5, unreachable: false }));
    expect(plan.builds.map(({ decision }) => decision.clean)).toEqual([false]);
    const outcomes = await executeClean(plan, request({ kind: 'filters', keep: 5, unreachable: false }), {
      info: (line) => lines.push(line),
    });
    expect(outcomes).toEqual([]);
    expect(lines).toEqual([`  removed .dot/${id(commits[2])}, a checkout no recorded build uses`]);
    expect(existsSync(join(repo.root, '.dot', id(commits[2])))).toBe(false);
    expect(worktrees()).not.toContain(failed.worktree);
    expect(worktrees()).toContain(kept.worktree);
  });

  it('drops with the build the retired generation a rebuild that died left (see promote/rebuild.ts), and no other', async () => {
    const retired = (commit: string) => [`analytics~${id(commit)}`, `analytics~${id(commit)}_finance`];
    warehouse = writeFakeWarehouseDbt(fakeDir, [
      ...ownSchemas(commits[1]),
      ...retired(commits[1]),
      ...ownSchemas(commits[2]),
      ...retired(commits[2]),
    ]);
    await recordBuild(commits[1]);
    await recordBuild(commits[2]);

    const { outcomes } = await clean(byRef(commits[1]));
    expect(outcomes.map(({ status }) => status)).toEqual(['cleaned']);
    expect(warehouse.schemas().sort()).toEqual([...ownSchemas(commits[2]), ...retired(commits[2])].sort());
  });

  it('ends the strictIsolation role a PostgreSQL build that did not finish may have left, after its schemas', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, [...ownSchemas(commits[1]), ...ownSchemas(commits[2])]);
    await recordBuild(commits[1], { status: 'running' });
    await recordBuild(commits[2]);
    const operations = () =>
      warehouse.calls().map((args) => {
        const { schemas, statements, builds } = JSON.parse(args[args.indexOf('--args') + 1]);
        if (statements) return `sql: ${statements.join('\n')}`;
        // On PostgreSQL the drop goes with the release of this workspace's claims (warehouse/claims.ts).
        const dropped: string[] = schemas ?? builds.flatMap((build: { schemas: string[] }) => build.schemas);
        return `drop: ${dropped.filter((schema) => !schema.includes('~')).join(', ')}`;
      });

    const { outcomes } = await clean(byRef(commits[1], commits[2]));

    expect(outcomes.map(({ status }) => status)).toEqual(['cleaned', 'cleaned']);
    const [drop, roles, ...rest] = operations();
    expect(drop).toBe(`drop: ${[...ownSchemas(commits[2]), ...ownSchemas(commits[1])].join(', ')}`);
    expect(roles).toContain(`drop role "nx_dbt_isolated_analytics_${id(commits[1])}";`);
    expect(roles).not.toContain(id(commits[2]));
    expect(rest).toEqual([]);
  });

  it('refuses --ref naming a promoted build, in one line saying how to go on, and changes nothing', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1], { promoted: [{ schema: 'prod', at: '2026-11-01T00:00:00.000Z' }] });
    await expect(planClean(request(byRef(commits[1])))).rejects.toThrow(
      `the build of analytics at ${commits[1]} (${id(commits[1])}, dbt target dev) is promoted to prod, whose views read its schemas: promote another commit there first (nx run analytics:promote --ref=<ref>), then clean it.`,
    );
    expect(warehouse.calls()).toEqual([]);
    expect(existsSync(paths.buildRecord)).toBe(true);
  });

  it('names the promote target as the plugin options call it', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    await recordBuild(commits[1], { promoted: [{ schema: 'prod', at: '2026-11-01T00:00:00.000Z' }] });
    await expect(planClean(request(byRef(commits[1]), { promoteTarget: 'publish' }))).rejects.toThrow(
      '(nx run analytics:publish --ref=<ref>)',
    );
  });

  it('drops nothing for a record whose schema was written as an unrendered template', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    await recordBuild(commits[1], { schema: `{{ env_var('S') }}_${id(commits[1])}` });
    const { plan, outcomes } = await clean(byRef(commits[1]));
    expect(plan.builds[0].schemas).toEqual([]);
    expect(outcomes[0].status).toBe('cleaned');
    expect(warehouse.schemas()).toEqual(ownSchemas(commits[1]));
  });

  it('drops the schemas of many builds in one dbt run per warehouse, and a second run finds nothing to do', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, [...ownSchemas(commits[1]), ...ownSchemas(commits[2])]);
    await recordBuild(commits[1]);
    await recordBuild(commits[2]);
    const { outcomes } = await clean({ kind: 'all' });
    expect(outcomes.map(({ status }) => status)).toEqual(['cleaned', 'cleaned']);
    expect(warehouse.schemas()).toEqual([]);
    expect(warehouse.calls()).toHaveLength(1);
    expect(warehouse.calls()[0]).toEqual(expect.arrayContaining(['run-operation', '--profile', 'analytics']));

    const again = await clean({ kind: 'all' });
    expect(again.outcomes).toEqual([]);
    expect(warehouse.calls()).toHaveLength(1);
  });

  it('protects the commits of main and of tags from every policy but --ref', async () => {
    for (const commit of commits) await recordBuild(commit);
    const { plan } = await clean({ kind: 'filters', keep: 0, unreachable: false });
    expect(plan.builds.map(({ record, decision }) => [record.commit, decision.clean, decision.reason])).toEqual([
      [commits[3], false, 'protected (main)'],
      [commits[2], true, 'not among the 0 most recent'],
      [commits[1], true, 'not among the 0 most recent'],
      [commits[0], false, 'protected (v1.0)'],
    ]);
    const named = await clean(byRef('v1.0'));
    expect(named.outcomes.map(({ build }) => build.record.commit)).toEqual([commits[0]]);
  });

  it('keeps a schema that a build staying in the workspace uses in the same warehouse', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const analytics = await recordBuild(commits[1]);
    await recordBuild(commits[1], { project: 'finance', schemas: [`analytics_${id(commits[1])}`] });

    const { plan } = await clean(byRef(commits[1]));
    expect(plan.builds[0].schemas).toEqual([`analytics_${id(commits[1])}_finance`]);
    expect(plan.builds[0].keptSchemas).toEqual([
      { schema: `analytics_${id(commits[1])}`, reason: `used by finance at ${id(commits[1])}` },
    ]);
    expect(warehouse.schemas()).toEqual([`analytics_${id(commits[1])}`]);
    expect(worktrees()).toContain(analytics.worktree);

    await clean(byRef(commits[1]), { project: 'finance' });
    expect(warehouse.schemas()).toEqual([]);
    expect(worktrees()).not.toContain(analytics.worktree);
    expect(existsSync(analytics.commitDir)).toBe(false);
  });

  it('refuses (--ref) or skips (a policy) a build of a commit that is being built now, and cleans it once that build is over', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1]);
    const running = await ensureCheckout(repo.root, repo.root, commits[1], { holder: 'analytics' });
    const detail = `an isolated build of analytics at ${id(commits[1])} is running now in process ${process.pid} on ${hostname()}: clean it once that build has finished`;

    const { outcomes } = await clean(byRef(commits[1]));
    expect(outcomes.map(({ status, detail }) => [status, detail])).toEqual([['failed', detail]]);
    const policy = await clean({ kind: 'all' });
    expect(policy.outcomes.map(({ status, detail }) => [status, detail])).toEqual([['skipped', detail]]);
    expect(warehouse.schemas()).toEqual(ownSchemas(commits[1]));
    expect(existsSync(paths.buildRecord)).toBe(true);
    expect(worktrees()).toContain(paths.worktree);

    await running.release();
    expect((await clean(byRef(commits[1]))).outcomes[0].status).toBe('cleaned');
    expect(warehouse.schemas()).toEqual([]);
  });

  it('says which process it waits for while a build makes its checkout of the commit', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    await recordBuild(commits[1]);
    const lines: string[] = [];
    const plan = await planClean(request(byRef(commits[1])));
    let cleaning: Promise<unknown> | undefined;
    await withLock(locksDir(repo.root), commitLockName(commits[1]), async () => {
      cleaning = executeClean(plan, request(byRef(commits[1])), { info: (line) => lines.push(line) });
      while (lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    });
    await cleaning;
    expect(lines[0]).toBe(
      `waiting up to 5 min for process ${process.pid} on ${hostname()} to finish with these commits (a build making its checkout, or another clean)`,
    );
    expect(warehouse.schemas()).toEqual([]);
  });

  it('takes the lock of a clean killed while it held the commit at once, without a word of waiting', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1]);
    const killed = await startLockHolder(locksDir(repo.root), commitLockName(commits[1]), fakeDir, 'clean');
    process.kill(killed.pid, 'SIGKILL');
    await killed.exited;
    const lines: string[] = [];
    const plan = await planClean(request(byRef(commits[1])));
    const outcomes = await executeClean(plan, request(byRef(commits[1])), { info: (line) => lines.push(line) });
    expect(outcomes.map(({ status }) => status)).toEqual(['cleaned']);
    expect(lines.filter((line) => /wait/.test(line))).toEqual([]);
    expect(existsSync(paths.commitDir)).toBe(false);
  }, 60_000);

  it("leaves the warehouse of a build restored from another workspace's cache where no claims are kept, and removes its files", async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1], {
      warehouse: { type: 'snowflake', location: 'acme/analytics' },
      builtBy: 'another-clone',
      restoredFromCacheAt: '2026-11-02T00:00:00Z',
    });
    const { plan, outcomes } = await clean(byRef(commits[1]));
    expect(plan.builds[0].schemas).toEqual([]);
    expect(plan.builds[0].keptSchemas.map(({ reason }) => reason)).toEqual([
      'built by another workspace',
      'built by another workspace',
    ]);
    expect(outcomes[0].status).toBe('cleaned');
    expect(warehouse.calls()).toEqual([]);
    expect(warehouse.schemas()).toEqual(ownSchemas(commits[1]));
    expect(existsSync(paths.commitDir)).toBe(false);
    expect(schemasDroppedToken(repo.root, 'analytics', commits[1])).toBeUndefined();
  });

  it('on PostgreSQL lets the claims in the warehouse decide, and says why it kept the schemas', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1], {
      builtBy: 'another-clone',
      restoredFromCacheAt: '2026-11-02T00:00:00Z',
    });
    const { plan, outcomes } = await clean(byRef(commits[1]));
    expect(plan.builds[0].schemas).toEqual(ownSchemas(commits[1]));
    const [operation] = warehouse.calls();
    expect(operation.slice(0, 3)).toEqual(['--quiet', 'run-operation', 'nx_dbt_isolated_release_claims']);
    expect(outcomes.map(({ status, detail }) => [status, detail])).toEqual([
      [
        'cleaned',
        `kept ${ownSchemas(commits[1]).join(', ')}: built by another workspace, which recorded no claim (an older build): clean it there; removed .dot/${id(commits[1])}/analytics/dev`,
      ],
    ]);
    expect(warehouse.schemas()).toEqual(ownSchemas(commits[1]));
    expect(existsSync(paths.commitDir)).toBe(false);
  });

  it('with --schemas=false keeps the warehouse and the record, so a later clean can drop the schemas', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1]);

    await clean(byRef(commits[1]), { dropSchemas: false });
    expect(warehouse.schemas()).toEqual(ownSchemas(commits[1]));
    expect(existsSync(paths.targetPath)).toBe(false);
    expect(worktrees()).not.toContain(paths.worktree);
    expect(readBuildRecord(paths.buildRecord)?.filesRemovedAt).toEqual(expect.any(String));
    expect(schemasDroppedToken(repo.root, 'analytics', commits[1])).toBeUndefined();

    const again = await clean(byRef(commits[1]), { dropSchemas: false });
    expect(again.plan.builds[0].decision).toEqual({ clean: false, reason: 'files already removed, schemas kept' });

    const { outcomes } = await clean(byRef(commits[1]));
    expect(outcomes[0].status).toBe('cleaned');
    expect(warehouse.schemas()).toEqual([]);
    expect(existsSync(paths.commitDir)).toBe(false);
  });

  it('with --schemas=false removes whole a build whose generated profile is gone: its record could reach no warehouse', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1]);
    rmSync(paths.profilesDir, { recursive: true });

    const { outcomes } = await clean(byRef(commits[1]), { dropSchemas: false });
    expect(outcomes.map(({ status, detail }) => [status, detail])).toEqual([
      ['cleaned', `schemas kept (--schemas=false); removed .dot/${id(commits[1])}/analytics/dev`],
    ]);
    expect(existsSync(paths.commitDir)).toBe(false);
    expect(worktrees()).not.toContain(paths.worktree);
    expect(warehouse.schemas()).toEqual(ownSchemas(commits[1]));
  });

  it('keeps a build whose schemas could not be dropped, and a later run finishes the job', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, ownSchemas(commits[1]));
    const paths = await recordBuild(commits[1]);
    warehouse.failWith('could not connect to server: Connection refused');

    const failed = await clean(byRef(commits[1]));
    expect(failed.outcomes[0].status).toBe('failed');
    expect(failed.outcomes[0].detail).toMatch(
      /^dbt could not release this workspace's claims on .* \(could not connect to server: Connection refused\): check that the warehouse is reachable/,
    );
    expect(existsSync(paths.buildRecord)).toBe(true);
    expect(worktrees()).toContain(paths.worktree);

    warehouse.failWith(undefined);
    expect((await clean(byRef(commits[1]))).outcomes[0].status).toBe('cleaned');
    expect(warehouse.schemas()).toEqual([]);
    expect(existsSync(paths.commitDir)).toBe(false);
  });

  it('shows in a dry run which schemas exist, changing nothing', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, [`analytics_${id(commits[1])}`]);
    const paths = await recordBuild(commits[1]);
    const plan = await planClean(request(byRef(commits[1])));
    const existing = await existingSchemas(plan, request(byRef(commits[1])), { info: () => undefined });
    expect(existing.get(plan.builds[0])).toEqual([`analytics_${id(commits[1])}`]);
    expect(warehouse.schemas()).toEqual([`analytics_${id(commits[1])}`]);
    expect(warehouse.calls()[0]).toEqual(expect.arrayContaining(['--args', expect.stringContaining('"drop":false')]));
    expect(existsSync(paths.buildRecord)).toBe(true);
  });

  it('cleans the builds of commits no branch, tag or HEAD leads to with --unreachable', async () => {
    repo.git('checkout', '--quiet', '-b', 'experiment');
    const lost = repo.commit('experiment', { 'experiment.txt': 'x' });
    repo.git('checkout', '--quiet', 'main');
    await recordBuild(lost);
    await recordBuild(commits[1]);
    repo.git('branch', '--quiet', '-D', 'experiment');

    const { outcomes } = await clean({ kind: 'filters', unreachable: true });
    expect(outcomes.map(({ status, build }) => [status, build.record.commit])).toEqual([['cleaned', lost]]);
  });

  it('finds by its id the build of a commit git no longer has, and refuses a ref that names nothing', async () => {
    repo.git('checkout', '--quiet', '-b', 'gone');
    const gone = repo.commit('gone', { 'gone.txt': 'x' });
    repo.git('checkout', '--quiet', 'main');
    const paths = await recordBuild(gone);
    repo.git('worktree', 'remove', '--force', paths.worktree);
    repo.git('branch', '--quiet', '-D', 'gone');
    repo.git('reflog', 'expire', '--expire=now', '--all');
    repo.git('gc', '--quiet', '--prune=now');
    expect(() => repo.git('cat-file', '-e', gone)).toThrow();

    const { outcomes } = await clean(byRef(id(gone)));
    expect(outcomes.map(({ status, detail, build }) => [status, detail, build.record.commit])).toEqual([
      ['cleaned', expect.any(String), gone],
    ]);
    expect(existsSync(paths.commitDir)).toBe(false);

    await expect(planClean(request(byRef('no-such-branch')))).rejects.toThrow(UserError);
    await expect(planClean(request(byRef('no-such-branch')))).rejects.toThrow(
      /^ref 'no-such-branch' names no commit here and no recorded build of analytics \(builds: none\)/,
    );
  });

  it('cleans a DuckDB build whose database file is gone without connecting, which would create the file', async () => {
    const file = join(repo.root, 'gone.duckdb');
    const paths = await recordBuild(commits[1], { warehouse: { type: 'duckdb', location: file } });
    const { outcomes } = await clean(byRef(commits[1]));
    expect(outcomes[0].status).toBe('cleaned');
    expect(warehouse.calls()).toEqual([]);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(paths.commitDir)).toBe(false);
  });

  it('plans in a workspace that never built anything without showing up in git status', async () => {
    removeDir(join(repo.root, '.dot'));
    const plan = await planClean(request({ kind: 'all' }));
    expect(plan.builds).toEqual([]);
    expect(repo.git('status', '--porcelain', '--untracked-files=all')).toBe('');
  });

  it('lists only the builds against the dbt target asked for', async () => {
    await recordBuild(commits[1]);
    await recordBuild(commits[1], { target: 'ci' });
    const { plan } = await clean({ kind: 'all' }, { dbtTarget: 'ci' });
    expect(plan.builds.map(({ record }) => record.target)).toEqual(['ci']);
    expect(existsSync(buildPaths(repo.root, id(commits[1]), 'analytics', 'dev').buildRecord)).toBe(true);
    expect(execFileSync('git', ['worktree', 'list'], { cwd: repo.root, encoding: 'utf8' })).toContain(id(commits[1]));
  });
});
