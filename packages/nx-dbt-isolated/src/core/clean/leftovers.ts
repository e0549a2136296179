import { existsSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { commitLockName, GIT_WORKTREES_LOCK, readCheckoutRecord, removeCheckout } from '../git/checkout';
import { commitPaths, dotRoot, leasesDir, locksDir, marksDir, operationsDir } from '../workspace/dot-layout';
import { readdirOrEmpty, removeIfEmpty } from '../workspace/files';
import { ifLockFree, liveLeases, removeAbandonedLeases, withLock } from '../workspace/lock';
import { OPERATION_PREFIX } from '../dbt/operation';
import { commitExists } from '../git/refs';

/**
 * A folder made with its lease in it (an operation's) may be seen for an instant without one:
 * it is taken for abandoned only once this old.
 */
const LEASELESS_GRACE_MS = 10_000;

/**
 * Removes what builds, cleans and operations that died left under `.dot`, once its owner is
 * gone: checkouts no recorded build uses, operation folders, leases, and the drop notes of
 * commits the repository no longer has. Returns a line for each thing removed.
 */
export async function removeLeftovers(repoRoot: string, workspaceRoot: string): Promise<string[]> {
  return [
    ...(await removeUnrecordedCheckouts(repoRoot, workspaceRoot)),
    ...(await removeDeadOperations(workspaceRoot)),
    ...(await removeDeadLeases(workspaceRoot)),
    ...(await removeMarksOfGoneCommits(repoRoot, workspaceRoot)),
  ];
}

/**
 * Removes the checkouts (`.dot/<id>/{checkout.json,worktree}` and git's registration) that a
 * build which failed or died before it wrote its record left: no record under the commit's
 * folder and no live lease on the commit. A commit whose lock a live process holds (a build
 * making its checkout) is left alone, without waiting. `except` is the commit a build is about
 * to use.
 */
export async function removeUnrecordedCheckouts(
  repoRoot: string,
  workspaceRoot: string,
  except?: string,
): Promise<string[]> {
  const removed: string[] = [];
  for (const buildId of readdirOrEmpty(dotRoot(workspaceRoot))) {
    const paths = commitPaths(workspaceRoot, buildId);
    const commit = readCheckoutRecord(paths.checkoutRecord)?.commit;
    if (commit === undefined || commit === except || holdsRecords(paths.commitDir)) continue;
    const gone = await ifLockFree(locksDir(workspaceRoot), commitLockName(commit), async () => {
      const leases = leasesDir(workspaceRoot, commit);
      if (holdsRecords(paths.commitDir) || (await liveLeases(leases)).length > 0) return false;
      await withLock(locksDir(workspaceRoot), GIT_WORKTREES_LOCK, () =>
        removeCheckout(repoRoot, workspaceRoot, paths.worktree),
      );
      rmSync(paths.commitDir, { recursive: true, force: true });
      rmSync(leases, { recursive: true, force: true });
      return true;
    });
    if (gone) removed.push(`removed ${relative(workspaceRoot, paths.commitDir)}, a checkout no recorded build uses`);
  }
  return removed;
}

/** Whether any build record lies under `.dot/<id>/<project>/<dbt target>/`. */
function holdsRecords(commitDir: string): boolean {
  return readdirOrEmpty(commitDir).some((project) =>
    readdirOrEmpty(join(commitDir, project)).some((target) =>
      existsSync(join(commitDir, project, target, 'build.json')),
    ),
  );
}

/** Removes `.dot/tmp/operation-*` folders whose process is gone (killed in the middle of a dbt run-operation). */
async function removeDeadOperations(workspaceRoot: string): Promise<string[]> {
  const dir = operationsDir(workspaceRoot);
  const removed: string[] = [];
  for (const entry of readdirOrEmpty(dir).filter((name) => name.startsWith(OPERATION_PREFIX))) {
    const folder = join(dir, entry);
    if ((await liveLeases(folder)).length > 0 || ageMs(folder) < LEASELESS_GRACE_MS) continue;
    rmSync(folder, { recursive: true, force: true });
    removed.push(`removed ${relative(workspaceRoot, folder)}, left by an operation whose process is gone`);
  }
  removeIfEmpty(dir);
  return removed;
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Removes the leases of processes that are gone from `.dot/locks/leases/<commit>/`, and the
 * folder once empty. Leases are taken under the commit's lock, so it is held meanwhile.
 */
async function removeDeadLeases(workspaceRoot: string): Promise<string[]> {
  const root = join(locksDir(workspaceRoot), 'leases');
  let count = 0;
  for (const commit of readdirOrEmpty(root)) {
    await ifLockFree(locksDir(workspaceRoot), commitLockName(commit), async () => {
      const dir = leasesDir(workspaceRoot, commit);
      count += removeAbandonedLeases(dir);
      removeIfEmpty(dir);
    });
  }
  removeIfEmpty(root);
  return count === 0 ? [] : [`removed ${count} lease(s) of builds whose process is gone`];
}

/**
 * Removes the marks (cache/key-marks.ts: drops, forced rebuilds) of commits the repository no longer
 * has: no build of them can run again, so no cache key needs them.
 */
async function removeMarksOfGoneCommits(repoRoot: string, workspaceRoot: string): Promise<string[]> {
  const removed: string[] = [];
  for (const kind of ['dropped', 'rebuilt'] as const) {
    const root = marksDir(workspaceRoot, kind);
    for (const project of readdirOrEmpty(root)) {
      for (const entry of readdirOrEmpty(join(root, project))) {
        const commit = /^([0-9a-f]{40,64})\.json$/.exec(entry)?.[1];
        if (commit === undefined || (await commitExists(repoRoot, commit))) continue;
        rmSync(join(root, project, entry), { force: true });
        removed.push(
          `removed ${relative(workspaceRoot, join(root, project, entry))}: the repository no longer has that commit`,
        );
      }
    }
  }
  // The folders stay: a clean writing its first note there may have just made one.
  return removed;
}
