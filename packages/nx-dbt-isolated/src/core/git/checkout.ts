import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { readJson, writeJsonAtomically } from '../workspace/files';
import { simpleGit } from 'simple-git';
import { commitPaths, dotRoot, leasesDir, locksDir } from '../workspace/dot-layout';
import { holdLease, withLock, type LockOptions } from '../workspace/lock';
import { SHORT_HASH_LENGTH } from './refs';
import { conePatterns, foldersInPatterns, outermost, type CheckoutFolders } from './sparse';

export interface Checkout {
  commit: string;
  /** Names the commit's folder and schema suffix: the short hash, longer only on a clash. */
  buildId: string;
  worktree: string;
  /** When this checkout was made; a marker made against an older checkout is void. */
  createdAt: string;
  /** The folders it holds now: the ones asked for, and those earlier builds of the commit asked for. */
  folders: CheckoutFolders;
  /**
   * Reused as it was, widened to more folders, made anew, or remade because a killed or edited
   * one was left broken.
   */
  state: CheckoutState;
}

export type CheckoutState = 'reused' | 'widened' | 'made' | 'repaired';

interface CheckoutRecord {
  commit: string;
  createdAt: string;
}

export interface CheckoutOptions {
  /** Names the build that uses the checkout (its project), for a clean that finds it in use. */
  holder: string;
  /** The repository folders the build reads (see sparse.ts); every file when absent. */
  folders?: CheckoutFolders;
  /** Told when another process holds the commit or git's worktree list and this one waits. */
  onWait?: LockOptions['onWait'];
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
  { holder, folders = 'all', onWait }: CheckoutOptions,
): Promise<LeasedCheckout> {
  const locks = locksDir(workspaceRoot);
  return withLock(
    locks,
    commitLockName(commit),
    async () => {
      const checkout = await withLock(
        locks,
        GIT_WORKTREES_LOCK,
        () => checkOut(repoRoot, workspaceRoot, commit, folders),
        { onWait },
      );
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

async function checkOut(
  repoRoot: string,
  workspaceRoot: string,
  commit: string,
  wanted: CheckoutFolders,
): Promise<Checkout> {
  const buildId = allocateBuildId(workspaceRoot, commit);
  const paths = commitPaths(workspaceRoot, buildId);
  const existing = readCheckoutRecord(paths.checkoutRecord);
  if (existing && (await isValidCheckout(paths.worktree, commit))) {
    const reused = { commit, buildId, worktree: paths.worktree, createdAt: existing.createdAt };
    const held = checkedOutFolders(paths.worktree);
    const widened = coveringBoth(held, wanted);
    if (sameFolders(widened, held)) return { ...reused, folders: held, state: 'reused' };
    // A failed widening (a killed read-tree leaves git's index lock behind) remakes the checkout.
    const ok = await applyFolders(paths.worktree, widened).then(
      () => true,
      () => false,
    );
    if (ok) return { ...reused, folders: widened, state: 'widened' };
  }
  const state = existing || existsSync(paths.worktree) ? 'repaired' : 'made';
  await removeCheckout(repoRoot, workspaceRoot, paths.worktree);
  const record: CheckoutRecord = { commit, createdAt: new Date().toISOString() };
  writeJsonAtomically(paths.checkoutRecord, record);
  await addWorktree(repoRoot, paths.worktree, commit, wanted);
  return { commit, buildId, worktree: paths.worktree, createdAt: record.createdAt, folders: wanted, state };
}

/**
 * `git worktree add`, or for a sparse checkout the same without files followed by a read-tree
 * under the folders' patterns. The user's hooks (post-checkout) must not run in a build's checkout.
 */
async function addWorktree(repoRoot: string, worktree: string, commit: string, folders: CheckoutFolders) {
  const git = simpleGit(repoRoot, { unsafe: { allowUnsafeHooksPath: true } });
  const noCheckout = folders === 'all' ? [] : ['--no-checkout'];
  await git.raw(['-c', 'core.hooksPath=/dev/null', 'worktree', 'add', '--detach', ...noCheckout, worktree, commit]);
  if (folders !== 'all') await applyFolders(worktree, folders);
}

/**
 * Makes the checkout hold `folders`, adding files and never removing any a running build reads.
 * The patterns live in the checkout's own `info/sparse-checkout` and the setting is given on the
 * command line: `git sparse-checkout` would turn on `extensions.worktreeConfig` in the user's
 * repository, which older git tools (libgit2, JGit) refuse to open.
 */
async function applyFolders(worktree: string, folders: CheckoutFolders): Promise<void> {
  const patternsFile = sparsePatternsFile(worktree);
  mkdirSync(dirname(patternsFile), { recursive: true });
  writeFileSync(patternsFile, folders === 'all' ? '/*\n' : conePatterns(folders));
  await simpleGit(worktree).raw([
    '-c',
    'core.sparseCheckout=true',
    '-c',
    'core.sparseCheckoutCone=true',
    'read-tree',
    '-mu',
    'HEAD',
  ]);
  if (folders === 'all') rmSync(patternsFile);
}

/** A checkout's pattern file: git keeps it in the worktree's own folder under `.git/worktrees/`. */
function sparsePatternsFile(worktree: string): string {
  const gitFile = readFileSync(resolve(worktree, '.git'), 'utf8');
  const gitDir = gitFile.replace(/^gitdir:\s*/, '').trim();
  return resolve(worktree, gitDir, 'info', 'sparse-checkout');
}

function checkedOutFolders(worktree: string): CheckoutFolders {
  const patternsFile = sparsePatternsFile(worktree);
  return existsSync(patternsFile) ? foldersInPatterns(readFileSync(patternsFile, 'utf8')) : 'all';
}

function coveringBoth(held: CheckoutFolders, wanted: CheckoutFolders): CheckoutFolders {
  return held === 'all' || wanted === 'all' ? 'all' : outermost([...held, ...wanted]);
}

function sameFolders(a: CheckoutFolders, b: CheckoutFolders): boolean {
  return a === 'all' || b === 'all' ? a === b : a.join('\n') === b.join('\n');
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
 * locked ("initializing") — then the registrations of the workspace's other checkouts whose
 * folders are gone. Never `git worktree prune`: that also forgets the user's own worktrees that
 * were moved or are on an unmounted disk, with their HEAD, index and reflog.
 */
export async function removeCheckout(repoRoot: string, workspaceRoot: string, worktree: string): Promise<void> {
  const git = simpleGit(repoRoot);
  if (existsSync(worktree)) {
    await git.raw(['worktree', 'remove', '--force', '--force', worktree]).catch(() => undefined);
    rmSync(worktree, { recursive: true, force: true });
  }
  // git lists real paths; the workspace's `.dot` exists here, as the checkout's record is in it.
  const dot = realpathSync(dotRoot(workspaceRoot)) + sep;
  for (const path of await registeredWorktrees(repoRoot)) {
    if (path.startsWith(dot) && !existsSync(join(path, '.git'))) {
      // Twice forced: git then removes a locked registration, and one whose folder is missing.
      await git.raw(['worktree', 'remove', '--force', '--force', path]).catch(() => undefined);
    }
  }
}

/** The folders of the repository's worktrees as git lists them (real paths), the main one first. */
async function registeredWorktrees(repoRoot: string): Promise<string[]> {
  const listing = await simpleGit(repoRoot).raw(['worktree', 'list', '--porcelain', '-z']);
  return listing
    .split('\0')
    .filter((field) => field.startsWith('worktree '))
    .map((field) => field.slice('worktree '.length));
}
