import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { relationsIn } from '../support/duckdb';
import { git, commitBeside } from '../../fixture-workspace/repo';
import { fixtureRelations } from '../support/fixture-relations';
import { fsck, fsckErrors, worktreeAdminDir, worktreeList } from '../support/git-health';
import { killNxWhen, waitUntilNoProcessUses, type KillMoment, type KilledNx } from '../support/kill';
import { outcome, SUCCEEDED } from '../support/outcome';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);
/** The killed build and its rerun; the rerun must really run dbt. */
const build = (ref: string) => ['run', 'analytics:isolated-build', `--ref=${ref}`, '--skip-nx-cache'];
/** A killed process's locks are taken over at once (workspace/lock.ts, ADR 19): the rerun only builds again. */
const RERUN_LIMIT_SECONDS = 90;

interface BuildRecord {
  commit: string;
  status: string;
  phase?: string;
  checkout?: string;
  recoveredFrom?: { startedAt: string; phase: string };
}

interface Figure {
  scenario: string;
  killedAfterSeconds?: number;
  left: string;
  rerunSeconds?: number;
  waited?: boolean;
  recovered: boolean;
}

describe('crash recovery: a build killed with SIGKILL is built again by the next run, with no manual step', () => {
  const figures: Figure[] = [];
  let ws: TestWorkspace;
  let warehouse: string;

  const dotOf = (commit: string) => join(ws.dir, '.dot', short(commit));
  const worktreeOf = (commit: string) => join(dotOf(commit), 'worktree');
  const recordFile = (commit: string) => join(dotOf(commit), 'analytics', 'dev', 'build.json');
  const readRecord = (commit: string): BuildRecord | undefined =>
    existsSync(recordFile(commit)) ? JSON.parse(readFileSync(recordFile(commit), 'utf8')) : undefined;
  /** A new commit of main's tree (plus `files`) on its own branch: a build of it starts from nothing. */
  const freshCommit = (name: string, files: Record<string, string> = {}) =>
    commitBeside(ws.dir, ws.main, `crash/${name}`, `Crash test: ${name}`, files);
  const locksLeft = () => {
    const locks = join(ws.dir, '.dot', 'locks');
    return existsSync(locks) ? readdirSync(locks).filter((name) => name.endsWith('.lock')) : [];
  };

  /** What a kill left behind for `commit`, in words, for the figures. */
  const describeLeft = (commit: string): string => {
    const worktree = worktreeOf(commit);
    const admin = worktreeAdminDir(ws.dir, worktree);
    const record = readRecord(commit);
    return [
      existsSync(join(dotOf(commit), 'checkout.json')) ? 'checkout.json' : 'no checkout.json',
      existsSync(worktree)
        ? `checkout folder (${existsSync(join(worktree, '.git')) ? 'with' : 'no'} .git)`
        : 'no checkout folder',
      admin === undefined
        ? 'not registered in git'
        : existsSync(join(admin, 'locked'))
          ? `registered, locked '${readFileSync(join(admin, 'locked'), 'utf8').trim()}'`
          : 'registered',
      record ? `build.json ${record.status}${record.phase ? `/${record.phase}` : ''}` : 'no build.json',
      `${locksLeft().length} lock(s) held`,
    ].join(', ');
  };

  /** Runs the build of `commit` and SIGKILLs nx's whole process group at `moment`. */
  const killBuild = async (commit: string, moment: KillMoment): Promise<KilledNx> => {
    const killed = await killNxWhen(ws.dir, build(commit), moment);
    // Not killed: nx ended first; its output says how far it got.
    expect({ killed: killed.killed, output: killed.killed ? '' : killed.output.slice(-3000) }).toEqual({
      killed: true,
      output: '',
    });
    // Nothing of the killed build still runs: no nx, no git, no dbt (Nx's plugin workers, in
    // their own process group, end by themselves once nx is gone).
    expect(await waitUntilNoProcessUses(ws.dir)).toEqual([]);
    return killed;
  };

  /** The checkout git records for `commit` is one, whole and unlocked; nothing is prunable; fsck is clean. */
  const expectSoundCheckout = (commit: string) => {
    const worktree = worktreeOf(commit);
    const entries = worktreeList(ws.dir);
    expect(entries.filter((entry) => entry.path === worktree)).toEqual([
      { path: worktree, head: commit, detached: true },
    ]);
    expect(
      entries.filter((entry) => entry.head === commit && entry.path.startsWith(join(ws.dir, '.dot'))),
    ).toHaveLength(1);
    expect(entries.filter((entry) => entry.prunable !== undefined)).toEqual([]);
    expect(git(worktree, 'status', '--porcelain', '--untracked-files=no')).toBe('');
    const checked = fsck(ws.dir);
    expect({ code: checked.code, errors: fsckErrors(checked.output) }).toEqual({ code: 0, errors: [] });
  };

  /**
   * Runs the same build again, as a user or CI would after the crash, and checks it: success,
   * a record that says so, the commit's tables, a sound checkout and repository, no lock left.
   */
  const rerun = async (scenario: string, commit: string, left: string, killed?: KilledNx) => {
    const figure: Figure = {
      scenario,
      killedAfterSeconds: killed?.killedAfterMs === undefined ? undefined : killed.killedAfterMs / 1000,
      left,
      recovered: false,
    };
    figures.push(figure);
    const started = Date.now();
    const result = await ws.nx(build(commit));
    figure.rerunSeconds = (Date.now() - started) / 1000;
    figure.waited = /waiting for/.test(result.output);
    expect(outcome(result)).toEqual(SUCCEEDED);
    expect(figure.rerunSeconds).toBeLessThan(RERUN_LIMIT_SECONDS);
    const record = readRecord(commit);
    expect(record).toMatchObject({ commit, status: 'succeeded' });
    expect(relationsIn(warehouse, `analytics_${short(commit)}`)).toEqual(
      fixtureRelations(`analytics_${short(commit)}`),
    );
    expect(
      queryDuckDb<{ n: number }>(warehouse, `select count(*) as n from analytics_${short(commit)}.orders`)[0].n,
    ).toBe(8);
    expectSoundCheckout(commit);
    expect(locksLeft()).toEqual([]);
    figure.recovered = true;
    return { result, record: record as BuildRecord };
  };

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(() => {
    const kills = figures.filter((figure) => figure.killedAfterSeconds !== undefined);
    const lines = figures.map(
      (figure) =>
        `  ${figure.scenario}: ${figure.killedAfterSeconds === undefined ? 'simulated' : `killed after ${figure.killedAfterSeconds.toFixed(1)}s`}; ` +
        `left ${figure.left}; rerun ${figure.recovered ? 'recovered' : 'FAILED'}` +
        `${figure.rerunSeconds === undefined ? '' : ` in ${figure.rerunSeconds.toFixed(1)}s`}${figure.waited ? ' (waited for a stale lock)' : ''}`,
    );
    console.log(
      [
        `Crash recovery figures: ${kills.length} SIGKILLs, ${kills.filter((figure) => figure.recovered).length} recovered; ` +
          `${figures.length - kills.length} simulated states, ${figures.filter((figure) => figure.killedAfterSeconds === undefined && figure.recovered).length} recovered`,
        ...lines,
      ].join('\n'),
    );
    ws?.remove();
  });

  it('(a) killed right after the ref is resolved, as the checkout is made', async () => {
    const commit = freshCommit('checkout');
    const killed = await killBuild(commit, { output: /• resolve ref \S+ \(/ });
    expect(killed.output).not.toMatch(/• checkout /);
    const { record } = await rerun('(a) kill after resolve ref', commit, describeLeft(commit), killed);
    expect(['made', 'repaired']).toContain(record.checkout);
  });

  it('(a) killed while git is writing the files of the checkout', async () => {
    // 20,000 files in the project (so in its sparse checkout) make git take a second or two to
    // write them: the kill lands inside it.
    const files = Object.fromEntries(
      Array.from({ length: 20_000 }, (_, index) => [
        `analytics/bulk/file-${String(index).padStart(5, '0')}.txt`,
        'bulk\n',
      ]),
    );
    const commit = freshCommit('large-checkout', files);
    const bulk = join(worktreeOf(commit), 'analytics', 'bulk');
    const killed = await killBuild(commit, { poll: () => existsSync(bulk) });
    const left = describeLeft(commit);
    // git had not finished: files are missing, and its index does not yet match the commit.
    expect(readdirSync(bulk).length).toBeLessThan(20_000);
    expect(git(worktreeOf(commit), 'status', '--porcelain', '--untracked-files=no')).not.toBe('');

    const { record } = await rerun('(a) kill while git writes the checkout', commit, left, killed);
    expect(record.checkout).toBe('repaired');
    expect(readdirSync(bulk)).toHaveLength(20_000);
  });

  it('(a) rebuilds a half-copied checkout folder that git does not know', async () => {
    const commit = freshCommit('half-copied');
    const worktree = worktreeOf(commit);
    mkdirSync(join(worktree, 'analytics', 'models'), { recursive: true });
    writeFileSync(
      join(dotOf(commit), 'checkout.json'),
      JSON.stringify({ commit, createdAt: new Date().toISOString() }),
    );
    writeFileSync(
      join(worktree, 'analytics', 'dbt_project.yml'),
      readFileSync(join(ws.dir, 'analytics', 'dbt_project.yml'), 'utf8'),
    );
    writeFileSync(join(worktree, 'analytics', 'models', 'orders.sql'), 'select');

    const { record } = await rerun('(a) half-copied folder, unknown to git', commit, describeLeft(commit));
    expect(record.checkout).toBe('repaired');
  });

  it('(b) killed during dbt deps', async () => {
    const commit = freshCommit('deps');
    const killed = await killBuild(commit, {
      output: /• checkout [0-9a-f]+ \(.*\) \([\d.]+s\)[\s\S]*(Running with dbt=|Installing)/,
    });
    expect(readRecord(commit)).toMatchObject({ status: 'running', phase: 'deps' });
    const left = describeLeft(commit);

    const { result, record } = await rerun('(b) kill during dbt deps', commit, left, killed);
    expect(result.output).toMatch(/• the build started at \S+ died during deps; building again/);
    expect(result.output).toMatch(/• dbt deps \(/);
    expect(record.recoveredFrom).toMatchObject({ phase: 'deps' });
  });

  it('(c) killed during the dbt run', async () => {
    const commit = freshCommit('run');
    const killed = await killBuild(commit, { output: /\d+ of \d+ START/ });
    expect(readRecord(commit)).toMatchObject({ status: 'running', phase: 'dbt' });
    const left = describeLeft(commit);

    const { result, record } = await rerun('(c) kill during the dbt run', commit, left, killed);
    expect(result.output).toMatch(/• the build started at \S+ died during dbt; building again/);
    expect(record.recoveredFrom).toMatchObject({ phase: 'dbt' });
  });

  it('(a) rebuilds a checkout whose git worktree add was killed after registering it, before writing its .git', async () => {
    // Last: if the build cannot recover, the registration stays broken (git fsck then reports
    // its HEAD) and would fail the checks of every test after it.
    // git worktree add writes, in this order: .git/worktrees/<name>/locked ('initializing'), the
    // checkout's folder, .git/worktrees/<name>/gitdir, the folder's .git file, then HEAD and the
    // files. A kill between gitdir and .git leaves what is made here: a locked registration
    // naming an empty folder, next to the checkout.json the plugin wrote before calling git.
    const commit = freshCommit('registered-only');
    const worktree = worktreeOf(commit);
    mkdirSync(dotOf(commit), { recursive: true });
    writeFileSync(
      join(dotOf(commit), 'checkout.json'),
      JSON.stringify({ commit, createdAt: new Date().toISOString() }),
    );
    git(ws.dir, 'worktree', 'add', '-q', '--lock', '--reason', 'initializing', '--detach', worktree, commit);
    const admin = worktreeAdminDir(ws.dir, worktree)!;
    for (const name of readdirSync(admin).filter((name) => name !== 'locked' && name !== 'gitdir')) {
      rmSync(join(admin, name), { recursive: true });
    }
    rmSync(worktree, { recursive: true });
    mkdirSync(worktree);

    const { record } = await rerun('(a) registered and locked by git, folder empty', commit, describeLeft(commit));
    expect(record.checkout).toBe('repaired');
  });
});
