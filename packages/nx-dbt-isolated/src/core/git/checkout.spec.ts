import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocateBuildId, ensureCheckout, isValidCheckout, removeCheckout } from './checkout';
import { commitPaths, ensureDotFolder, leasesDir } from '../workspace/dot-layout';
import { liveLeaseHolders } from '../workspace/lock';
import { makeTempDir, makeTempRepo, removeDir, writeFiles, type TempRepo } from '../testing/git-repo';

const gitIn = (dir: string, ...args: string[]) =>
  execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** What a user sees of their repository: checkouts must leave all of it alone. */
function repoState(repo: TempRepo) {
  return {
    head: repo.git('symbolic-ref', 'HEAD'),
    branches: repo.git('for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads'),
    status: repo.git('status', '--porcelain', '--untracked-files=all'),
    stash: repo.git('stash', 'list'),
  };
}

/** A commit id equal to `commit` in its first `length` characters and different right after. */
function sharingPrefix(commit: string, length: number): string {
  const next = commit[length] === '0' ? '1' : '0';
  return commit.slice(0, length) + next + commit.slice(length + 1);
}

describe('ensureCheckout', () => {
  let repo: TempRepo;
  let first: string;
  let second: string;

  beforeEach(() => {
    repo = makeTempRepo();
    first = repo.commit('first', {
      'analytics/dbt_project.yml': 'name: analytics\n',
      'analytics/models/a.sql': 'select 1\n',
    });
    second = repo.commit('second', { 'analytics/models/a.sql': 'select 2\n' });
    ensureDotFolder(repo.root);
  });
  afterEach(() => repo.cleanup());

  it('checks the commit out, detached, under .dot/<8 hex>/worktree', async () => {
    const checkout = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(checkout.state).toBe('made');
    expect(checkout.commit).toBe(first);
    expect(checkout.buildId).toBe(first.slice(0, 8));
    expect(checkout.buildId).toMatch(/^[0-9a-f]{8}$/);
    expect(checkout.worktree).toBe(join(repo.root, '.dot', first.slice(0, 8), 'worktree'));
    expect(gitIn(checkout.worktree, 'rev-parse', 'HEAD')).toBe(first);
    expect(gitIn(checkout.worktree, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('HEAD');
    expect(readFileSync(join(checkout.worktree, 'analytics/models/a.sql'), 'utf8')).toBe('select 1\n');
    const record = JSON.parse(readFileSync(commitPaths(repo.root, checkout.buildId).checkoutRecord, 'utf8'));
    expect(record).toEqual({ commit: first, createdAt: checkout.createdAt });
    await expect(isValidCheckout(checkout.worktree, first)).resolves.toBe(true);
  });

  it('reuses a valid checkout', async () => {
    const made = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    const again = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(again).toEqual({ ...made, state: 'reused', release: expect.any(Function) });
  });

  it('holds a lease on the commit for its holder until released', async () => {
    const checkout = await ensureCheckout(repo.root, repo.root, first, { holder: '@scope/analytics.v2' });
    const other = await ensureCheckout(repo.root, repo.root, first, { holder: 'finance' });
    await expect(liveLeaseHolders(leasesDir(repo.root, first))).resolves.toEqual(
      expect.arrayContaining(['@scope/analytics.v2', 'finance']),
    );
    await checkout.release();
    await expect(liveLeaseHolders(leasesDir(repo.root, first))).resolves.toEqual(['finance']);
    await other.release();
    await expect(liveLeaseHolders(leasesDir(repo.root, first))).resolves.toEqual([]);
    await expect(liveLeaseHolders(leasesDir(repo.root, second))).resolves.toEqual([]);
  });

  it('recreates a checkout whose files were deleted', async () => {
    const made = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    const model = join(made.worktree, 'analytics/models/a.sql');
    unlinkSync(model);
    await expect(isValidCheckout(made.worktree, first)).resolves.toBe(false);

    const remade = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(remade.state).toBe('repaired');
    expect(remade.worktree).toBe(made.worktree);
    expect(remade.createdAt).not.toBe(made.createdAt);
    expect(readFileSync(model, 'utf8')).toBe('select 1\n');
    await expect(isValidCheckout(remade.worktree, first)).resolves.toBe(true);
    await expect(ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' })).resolves.toMatchObject({
      state: 'reused',
    });
  });

  it('recreates a checkout whose folder was removed', async () => {
    const made = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    rmSync(made.worktree, { recursive: true, force: true });

    const remade = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(remade.state).toBe('repaired');
    expect(gitIn(remade.worktree, 'rev-parse', 'HEAD')).toBe(first);
    await expect(isValidCheckout(remade.worktree, first)).resolves.toBe(true);
    const registered = repo.git('worktree', 'list', '--porcelain').match(/^worktree /gm) ?? [];
    expect(registered).toHaveLength(2);
  });

  it('repairs a checkout left half-made by a killed git worktree add', async () => {
    const made = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    // What a kill during `git worktree add` leaves: the registration locked, the files partly there.
    repo.git('worktree', 'lock', '--reason', 'initializing', made.worktree);
    rmSync(join(made.worktree, 'analytics'), { recursive: true, force: true });

    const remade = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(remade.state).toBe('repaired');
    await expect(isValidCheckout(remade.worktree, first)).resolves.toBe(true);
    expect(repo.git('worktree', 'list', '--porcelain')).not.toMatch(/locked|prunable/);
  });

  it('repairs a checkout git registered and locked before the kill, whose folder has no .git yet', async () => {
    const made = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    repo.git('worktree', 'lock', '--reason', 'initializing', made.worktree);
    rmSync(made.worktree, { recursive: true, force: true });
    mkdirSync(made.worktree);

    const remade = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(remade.state).toBe('repaired');
    await expect(isValidCheckout(remade.worktree, first)).resolves.toBe(true);
    expect(repo.git('worktree', 'list', '--porcelain')).not.toMatch(/locked|prunable/);
    expect(repo.git('fsck')).not.toMatch(/error/);
  });

  it('recreates a checkout moved to another commit', async () => {
    const made = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    gitIn(made.worktree, 'checkout', '--quiet', '--detach', second);

    const remade = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(remade.state).toBe('repaired');
    expect(gitIn(remade.worktree, 'rev-parse', 'HEAD')).toBe(first);
  });

  it("leaves the repository's branches, working tree, status and stash alone", async () => {
    writeFiles(repo.root, { 'analytics/models/a.sql': 'select 42\n', 'scratch.txt': 'notes\n' });
    repo.git('stash', 'push', '--quiet', '--include-untracked', '--message', 'kept');
    writeFiles(repo.root, { 'analytics/models/a.sql': 'select 43\n', 'untracked.sql': 'select 4\n' });
    const before = repoState(repo);
    expect(before.status).not.toBe('');
    expect(before.stash).toContain('kept');

    const one = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    await ensureCheckout(repo.root, repo.root, second, { holder: 'analytics' });
    rmSync(one.worktree, { recursive: true, force: true });
    await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });

    expect(repoState(repo)).toEqual(before);
    expect(readFileSync(join(repo.root, 'analytics/models/a.sql'), 'utf8')).toBe('select 43\n');
  });

  it("leaves the user's own moved worktree registered, and forgets only the workspace's checkouts whose folders are gone", async () => {
    const outside = makeTempDir('nx-dbt-isolated-user-worktree-');
    const userWorktree = join(outside, 'feature');
    repo.git('worktree', 'add', '--quiet', '-b', 'feature', userWorktree, first);
    writeFiles(userWorktree, { 'analytics/models/a.sql': 'select 7\n' });
    gitIn(userWorktree, 'add', 'analytics/models/a.sql');
    const admin = gitIn(userWorktree, 'rev-parse', '--absolute-git-dir');
    const moved = join(outside, 'moved-away');
    renameSync(userWorktree, moved);

    try {
      const one = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
      rmSync(one.worktree, { recursive: true, force: true });
      // A fresh checkout (made) and the clean path (removeCheckout) both tidy git's list.
      const two = await ensureCheckout(repo.root, repo.root, second, { holder: 'analytics' });
      expect(two.state).toBe('made');
      expect(repo.git('worktree', 'list', '--porcelain')).not.toContain(one.worktree);
      await removeCheckout(repo.root, repo.root, two.worktree);

      for (const file of ['HEAD', 'index', 'logs/HEAD']) expect(existsSync(join(admin, file))).toBe(true);
      const registered = repo.git('worktree', 'list', '--porcelain');
      expect(registered).toContain(`worktree ${userWorktree}\n`);
      expect(registered).not.toContain(two.worktree);
      renameSync(moved, userWorktree);
      expect(gitIn(userWorktree, 'status', '--porcelain')).toBe('M  analytics/models/a.sql');
      expect(gitIn(userWorktree, 'symbolic-ref', 'HEAD')).toBe('refs/heads/feature');
    } finally {
      removeDir(outside);
    }
  });

  it("does not run the repository's post-checkout hook", async () => {
    const marker = join(repo.root, 'hook-ran');
    const hook = join(repo.root, '.git', 'hooks', 'post-checkout');
    writeFileSync(hook, `#!/bin/sh\ntouch '${marker}'\n`);
    chmodSync(hook, 0o755);

    const checkout = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(existsSync(checkout.worktree)).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  it('gives a commit that shares its 8-character prefix with another its own folder', async () => {
    const other = sharingPrefix(first, 8);
    writeFiles(repo.root, {
      [`.dot/${first.slice(0, 8)}/checkout.json`]: JSON.stringify({ commit: other, createdAt: 'then' }),
    });
    const checkout = await ensureCheckout(repo.root, repo.root, first, { holder: 'analytics' });
    expect(checkout.buildId).toBe(first.slice(0, 9));
    expect(checkout.worktree).toBe(join(repo.root, '.dot', first.slice(0, 9), 'worktree'));
    expect(JSON.parse(readFileSync(join(repo.root, '.dot', first.slice(0, 8), 'checkout.json'), 'utf8')).commit).toBe(
      other,
    );
  });
});

describe('sparse checkouts', () => {
  let repo: TempRepo;
  let commit: string;

  beforeEach(() => {
    repo = makeTempRepo();
    commit = repo.commit('first', {
      'README.md': 'root file\n',
      'dbt/README.md': 'parent file\n',
      'dbt/analytics/dbt_project.yml': 'name: analytics\n',
      'dbt/analytics/models/a.sql': 'select 1\n',
      'dbt/finance/dbt_project.yml': 'name: finance\n',
      'dbt/shared/macros/m.sql': '{% macro m() %}1{% endmacro %}\n',
      'services/api/main.ts': 'export {};\n',
    });
    ensureDotFolder(repo.root);
  });
  afterEach(() => repo.cleanup());

  const filesIn = (worktree: string) => gitIn(worktree, 'ls-files', '-t').split('\n');
  const present = (worktree: string, file: string) => existsSync(join(worktree, file));

  it("holds the folders asked for, the root's and parents' own files, and leaves the rest out", async () => {
    const configBefore = readFileSync(join(repo.root, '.git', 'config'), 'utf8');
    const checkout = await ensureCheckout(repo.root, repo.root, commit, {
      holder: 'analytics',
      folders: ['dbt/analytics', 'dbt/shared'],
    });
    expect(checkout).toMatchObject({ state: 'made', folders: ['dbt/analytics', 'dbt/shared'] });
    for (const file of ['README.md', 'dbt/README.md', 'dbt/analytics/models/a.sql', 'dbt/shared/macros/m.sql']) {
      expect(present(checkout.worktree, file)).toBe(true);
    }
    expect(present(checkout.worktree, 'dbt/finance')).toBe(false);
    expect(present(checkout.worktree, 'services')).toBe(false);
    // Left-out files are git's skip-worktree entries: the checkout is valid, and its status clean.
    expect(filesIn(checkout.worktree)).toEqual(expect.arrayContaining(['S services/api/main.ts', 'H dbt/README.md']));
    await expect(isValidCheckout(checkout.worktree, commit)).resolves.toBe(true);
    // The user's repository settings stay as they were (no extensions.worktreeConfig).
    expect(readFileSync(join(repo.root, '.git', 'config'), 'utf8')).toBe(configBefore);
    expect(existsSync(join(repo.root, '.git', 'config.worktree'))).toBe(false);
  });

  it('widens a checkout for another project at the same commit, keeping what it held', async () => {
    const first = await ensureCheckout(repo.root, repo.root, commit, {
      holder: 'analytics',
      folders: ['dbt/analytics'],
    });
    writeFiles(first.worktree, { 'dbt/analytics/target/run.json': '{}' });
    const second = await ensureCheckout(repo.root, repo.root, commit, { holder: 'finance', folders: ['dbt/finance'] });
    expect(second).toMatchObject({ state: 'widened', folders: ['dbt/analytics', 'dbt/finance'] });
    expect(second.createdAt).toBe(first.createdAt);
    expect(present(second.worktree, 'dbt/finance/dbt_project.yml')).toBe(true);
    expect(present(second.worktree, 'dbt/analytics/target/run.json')).toBe(true);
    expect(present(second.worktree, 'services')).toBe(false);
    await expect(
      ensureCheckout(repo.root, repo.root, commit, { holder: 'analytics', folders: ['dbt/analytics'] }),
    ).resolves.toMatchObject({ state: 'reused', folders: ['dbt/analytics', 'dbt/finance'] });
  });

  it('widens to every file for a build that needs them, and a full checkout serves sparse builds as it is', async () => {
    await ensureCheckout(repo.root, repo.root, commit, { holder: 'analytics', folders: ['dbt/analytics'] });
    const full = await ensureCheckout(repo.root, repo.root, commit, { holder: 'finance' });
    expect(full).toMatchObject({ state: 'widened', folders: 'all' });
    expect(present(full.worktree, 'services/api/main.ts')).toBe(true);
    expect(filesIn(full.worktree).filter((line) => line.startsWith('S '))).toEqual([]);
    await expect(
      ensureCheckout(repo.root, repo.root, commit, { holder: 'analytics', folders: ['dbt/analytics'] }),
    ).resolves.toMatchObject({ state: 'reused', folders: 'all' });
  });

  it('remakes a checkout whose widening git cannot do (a killed read-tree left its index lock)', async () => {
    const made = await ensureCheckout(repo.root, repo.root, commit, {
      holder: 'analytics',
      folders: ['dbt/analytics'],
    });
    const gitDir = gitIn(made.worktree, 'rev-parse', '--absolute-git-dir');
    writeFileSync(join(gitDir, 'index.lock'), '');
    const remade = await ensureCheckout(repo.root, repo.root, commit, { holder: 'finance', folders: ['dbt/finance'] });
    expect(remade).toMatchObject({ state: 'repaired', folders: ['dbt/finance'] });
    expect(present(remade.worktree, 'dbt/finance/dbt_project.yml')).toBe(true);
    await expect(isValidCheckout(remade.worktree, commit)).resolves.toBe(true);
  });

  it('remakes a sparse checkout killed before git filled it in', async () => {
    const made = await ensureCheckout(repo.root, repo.root, commit, {
      holder: 'analytics',
      folders: ['dbt/analytics'],
    });
    // What a kill between `worktree add --no-checkout` and read-tree leaves: HEAD set, no index.
    rmSync(join(gitIn(made.worktree, 'rev-parse', '--absolute-git-dir'), 'index'));
    await expect(isValidCheckout(made.worktree, commit)).resolves.toBe(false);
    const remade = await ensureCheckout(repo.root, repo.root, commit, {
      holder: 'analytics',
      folders: ['dbt/analytics'],
    });
    expect(remade.state).toBe('repaired');
    await expect(isValidCheckout(remade.worktree, commit)).resolves.toBe(true);
  });
});

describe('allocateBuildId', () => {
  let repo: TempRepo;
  let commit: string;

  beforeEach(() => {
    repo = makeTempRepo();
    commit = repo.commit('first', { 'a.txt': 'a\n' });
    ensureDotFolder(repo.root);
  });
  afterEach(() => repo.cleanup());

  const claim = (buildId: string, owner: string) =>
    writeFiles(repo.root, { [`.dot/${buildId}/checkout.json`]: JSON.stringify({ commit: owner, createdAt: 'then' }) });

  it('uses the 8-character short hash when its folder is free or already this commit’s', () => {
    expect(allocateBuildId(repo.root, commit)).toBe(commit.slice(0, 8));
    claim(commit.slice(0, 8), commit);
    expect(allocateBuildId(repo.root, commit)).toBe(commit.slice(0, 8));
  });

  it('takes 9 characters when another commit owns the 8-character folder', () => {
    claim(commit.slice(0, 8), sharingPrefix(commit, 8));
    expect(allocateBuildId(repo.root, commit)).toBe(commit.slice(0, 9));
  });

  it('takes as many characters as it needs to reach a free folder', () => {
    claim(commit.slice(0, 8), sharingPrefix(commit, 9));
    claim(commit.slice(0, 9), sharingPrefix(commit, 9));
    expect(allocateBuildId(repo.root, commit)).toBe(commit.slice(0, 10));
  });
});
