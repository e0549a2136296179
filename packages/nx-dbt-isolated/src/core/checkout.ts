import { existsSync, rmSync } from 'node:fs';
import { readJson, writeJsonAtomically } from './files';
import { simpleGit } from 'simple-git';
import { commitPaths, leasesDir, locksDir } from './dot-layout';
import { holdLease, withLock } from './lock';
import { SHORT_HASH_LENGTH } from './refs';

export interface Checkout {
  commit: string;
  /** Names the commit's folder and schema suffix: the short hash, longer only on a clash. */
  buildId: string;
  worktree: string;
  /** When this checkout was made; a marker made against an older checkout is void. */
  createdAt: string;
  /** Reused as it was, made anew, or remade because a killed or edited one was left broken. */
  state: 'reused' | 'made' | 'repaired';
}

interface CheckoutRecord {
  commit: string;
  createdAt: string;
}

export interface CheckoutOptions {
  /** Names the build that uses the checkout (its project), for a clean that finds it in use. */
  holder: string;
  /** Told when another process holds the commit or git's worktree list and this one waits. */
  onWait?: () => void;
}

export interface LeasedCheckout extends Checkout {
  /** Ends this build's use of the checkout; until then a clean leaves the commit alone. */
  release(): Promise<void>;
}

/**
 * Returns a clean, detached checkout of `commit` under `.dot/<short_hash>/worktree`, reusing a
 * valid one and recreating a broken one, with a lease that keeps a clean from removing it while
 * the build runs. Checkout and clean of one commit take turns under that commit's lock; git's
 * worktree changes are serialised by one lock per workspace, as git keeps them in shared metadata.
 */
export async function ensureCheckout(
  repoRoot: string,
  workspaceRoot: string,
  commit: string,
  { holder, onWait }: CheckoutOptions,
): Promise<LeasedCheckout> {
  const locks = locksDir(workspaceRoot);
  return withLock(
    locks,
    commitLockName(commit),
    async () => {
      const checkout = await withLock(locks, GIT_WORKTREES_LOCK, () => checkOut(repoRoot, workspaceRoot, commit), {
        onWait,
      });
      const release = await holdLease(leasesDir(workspaceRoot, commit), holder);
      return { ...checkout, release };
    },
    { onWait },
  );
}

/** The lock a checkout and a clean of `commit` take turns under. */
export function commitLockName(commit: string): string {
  return `commit-${commit}`;
}

export const GIT_WORKTREES_LOCK = 'git-worktrees';

async function checkOut(repoRoot: string, workspaceRoot: string, commit: string): Promise<Checkout> {
  const buildId = allocateBuildId(workspaceRoot, commit);
  const paths = commitPaths(workspaceRoot, buildId);
  const existing = readCheckoutRecord(paths.checkoutRecord);
  if (existing && (await isValidCheckout(paths.worktree, commit))) {
    return { commit, buildId, worktree: paths.worktree, createdAt: existing.createdAt, state: 'reused' };
  }
  const state = existing || existsSync(paths.worktree) ? 'repaired' : 'made';
  await removeCheckout(repoRoot, paths.worktree);
  const record: CheckoutRecord = { commit, createdAt: new Date().toISOString() };
  writeJsonAtomically(paths.checkoutRecord, record);
  // The user's hooks (post-checkout) must not run in a checkout made for a build.
  await simpleGit(repoRoot, { unsafe: { allowUnsafeHooksPath: true } }).raw([
    '-c',
    'core.hooksPath=/dev/null',
    'worktree',
    'add',
    '--detach',
    paths.worktree,
    commit,
  ]);
  return { commit, buildId, worktree: paths.worktree, createdAt: record.createdAt, state };
}

/**
 * The shortest id of at least 8 hex characters whose folder is free or already belongs to
 * this commit, so two commits that share a short prefix never share a folder or a schema.
 */
export function allocateBuildId(workspaceRoot: string, commit: string): string {
  for (let length = SHORT_HASH_LENGTH; length <= commit.length; length++) {
    const buildId = commit.slice(0, length);
    const owner = readCheckoutRecord(commitPaths(workspaceRoot, buildId).checkoutRecord)?.commit;
    if (owner === undefined || owner === commit) return buildId;
  }
  throw new Error(`no free .dot folder for commit ${commit}`);
}

export function readCheckoutRecord(path: string): CheckoutRecord | undefined {
  const record = readJson<CheckoutRecord>(path);
  return typeof record?.commit === 'string' ? record : undefined;
}

/** Valid: a registered worktree at `commit` whose tracked files are all as committed. */
export async function isValidCheckout(worktree: string, commit: string): Promise<boolean> {
  if (!existsSync(`${worktree}/.git`)) return false;
  try {
    const git = simpleGit(worktree);
    const head = (await git.revparse(['HEAD'])).trim();
    if (head !== commit) return false;
    const changes = await git.raw(['status', '--porcelain', '--untracked-files=no']);
    return changes.trim() === '';
  } catch {
    return false;
  }
}

/**
 * Removes a checkout and its registration in git, whatever state it was left in — including a
 * `git worktree add` killed before the folder got its `.git`, which leaves the registration
 * locked ("initializing"): `prune` keeps locked entries, so it is unlocked first.
 */
export async function removeCheckout(repoRoot: string, worktree: string): Promise<void> {
  const git = simpleGit(repoRoot);
  await git.raw(['worktree', 'unlock', worktree]).catch(() => undefined);
  if (existsSync(worktree)) {
    await git.raw(['worktree', 'remove', '--force', '--force', worktree]).catch(() => undefined);
    rmSync(worktree, { recursive: true, force: true });
  }
  await git.raw(['worktree', 'prune']);
}
