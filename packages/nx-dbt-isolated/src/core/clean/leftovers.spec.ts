import { existsSync, mkdirSync, readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { commitLockName, ensureCheckout } from '../git/checkout';
import { markRebuilt, markSchemasDropped } from '../cache/key-marks';
import { buildPaths, commitPaths, ensureDotFolder, leasesDir, locksDir, marksDir } from '../workspace/dot-layout';
import { removeLeftovers, removeUnrecordedCheckouts } from './leftovers';
import { holdLease, liveLeaseHolders, withLock } from '../workspace/lock';
import { writeBuildRecord } from '../build/records';
import { buildRecord } from '../testing/build-record';
import { makeTempDir, makeTempRepo, removeDir, type TempRepo } from '../testing/git-repo';
import { startLockHolder } from '../testing/lock-holder';

describe('removeLeftovers', () => {
  let repo: TempRepo;
  let commits: string[];
  let elsewhere: string;
  beforeEach(() => {
    repo = makeTempRepo();
    commits = ['one', 'two', 'three'].map((name) => repo.commit(name, { [`${name}.txt`]: name }));
    ensureDotFolder(repo.root);
    elsewhere = makeTempDir();
  });
  afterEach(() => {
    repo.cleanup();
    removeDir(elsewhere);
  });

  const worktrees = () => repo.git('worktree', 'list', '--porcelain');
  /** A checkout as a build leaves it when it fails before writing its record: lease released, no record. */
  const unrecordedCheckout = async (commit: string) => {
    const checkout = await ensureCheckout(repo.root, repo.root, commit, { holder: 'analytics' });
    await checkout.release();
    return commitPaths(repo.root, checkout.buildId);
  };
  /** A process that took a lease in `dir` and was killed with SIGKILL, before it could release it. */
  const deadLease = async (dir: string, holder: string) => {
    const process_ = await startLockHolder(join(elsewhere, 'locks'), `killed-${holder}`, dir, holder);
    process.kill(process_.pid, 'SIGKILL');
    await process_.exited;
  };

  it("removes a checkout no recorded build uses, with git's registration, and leaves recorded builds and the user's worktrees", async () => {
    const leftover = await unrecordedCheckout(commits[0]);
    const recorded = await unrecordedCheckout(commits[1]);
    const paths = buildPaths(repo.root, commits[1].slice(0, 8), 'analytics', 'dev');
    writeBuildRecord(paths.buildRecord, buildRecord({ commit: commits[1], buildId: commits[1].slice(0, 8) }));
    const users = join(elsewhere, 'mine');
    repo.git('worktree', 'add', '--detach', users, commits[2]);

    const lines = await removeLeftovers(repo.root, repo.root);
    expect(lines).toEqual([`removed .dot/${commits[0].slice(0, 8)}, a checkout no recorded build uses`]);
    expect(existsSync(leftover.commitDir)).toBe(false);
    expect(worktrees()).not.toContain(leftover.worktree);
    expect(worktrees()).toContain(recorded.worktree);
    expect(worktrees()).toContain(users);
    expect(existsSync(paths.buildRecord)).toBe(true);
    expect(await removeLeftovers(repo.root, repo.root)).toEqual([]);
  });

  it('leaves a checkout a live build holds (a lease, or the lock of the commit it is checking out) and the one a build is about to use', async () => {
    const leased = await ensureCheckout(repo.root, repo.root, commits[0], { holder: 'analytics' });
    const locked = await unrecordedCheckout(commits[1]);
    const wanted = await unrecordedCheckout(commits[2]);

    await withLock(locksDir(repo.root), commitLockName(commits[1]), async () => {
      expect(await removeUnrecordedCheckouts(repo.root, repo.root, commits[2])).toEqual([]);
    });
    expect(existsSync(leased.worktree)).toBe(true);
    expect(existsSync(locked.worktree)).toBe(true);
    expect(existsSync(wanted.worktree)).toBe(true);

    await leased.release();
    expect(await removeUnrecordedCheckouts(repo.root, repo.root, commits[2])).toHaveLength(2);
    expect(worktrees()).toContain(wanted.worktree);
    expect(worktrees()).not.toContain(leased.worktree);
  });

  it('removes operation folders and leases whose process is gone, and keeps those of live processes', async () => {
    const tmp = join(repo.root, '.dot', 'tmp');
    const dead = join(tmp, 'operation-dead');
    await deadLease(dead, 'operation');
    utimesSync(dead, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const live = join(tmp, 'operation-live');
    const releaseLive = await holdLease(live, 'operation');
    // Made an instant ago: its lease is on the way.
    mkdirSync(join(tmp, 'operation-new'));
    const leases = leasesDir(repo.root, commits[0]);
    await deadLease(leases, 'analytics');
    const releaseBuild = await holdLease(leases, 'finance');

    const lines = await removeLeftovers(repo.root, repo.root);
    expect(lines).toEqual([
      'removed .dot/tmp/operation-dead, left by an operation whose process is gone',
      'removed 1 lease(s) of builds whose process is gone',
    ]);
    expect(readdirSync(tmp).sort()).toEqual(['operation-live', 'operation-new']);
    await expect(liveLeaseHolders(leases)).resolves.toEqual(['finance']);
    expect(readdirSync(leases)).toHaveLength(1);

    await releaseBuild();
    await releaseLive();
    await removeLeftovers(repo.root, repo.root);
    expect(existsSync(leases)).toBe(false);
  }, 60_000);

  it('removes the drop and rebuild marks of commits the repository no longer has, and keeps the others', async () => {
    repo.git('checkout', '--quiet', '-b', 'gone');
    const gone = repo.commit('gone', { 'gone.txt': 'x' });
    repo.git('checkout', '--quiet', 'main');
    markSchemasDropped(repo.root, 'analytics', gone);
    markSchemasDropped(repo.root, 'analytics', commits[0]);
    markRebuilt(repo.root, 'analytics', gone);
    markRebuilt(repo.root, 'analytics', commits[0]);
    expect(await removeLeftovers(repo.root, repo.root)).toEqual([]);

    repo.git('branch', '--quiet', '-D', 'gone');
    repo.git('reflog', 'expire', '--expire=now', '--all');
    repo.git('gc', '--quiet', '--prune=now');
    expect(await removeLeftovers(repo.root, repo.root)).toEqual([
      `removed .dot/dropped/analytics/${gone}.json: the repository no longer has that commit`,
      `removed .dot/rebuilt/analytics/${gone}.json: the repository no longer has that commit`,
    ]);
    expect(readdirSync(join(marksDir(repo.root, 'dropped'), 'analytics'))).toEqual([`${commits[0]}.json`]);
    expect(readdirSync(join(marksDir(repo.root, 'rebuilt'), 'analytics'))).toEqual([`${commits[0]}.json`]);
  });
});
