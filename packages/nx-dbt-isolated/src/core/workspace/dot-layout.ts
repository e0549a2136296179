import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors';

/** Everything the plugin writes lives under `<workspaceRoot>/.dot`. */
export const DOT_FOLDER = '.dot';

export interface BuildPaths {
  /** `.dot/<buildId>`: one folder per commit. */
  commitDir: string;
  /** `.dot/<buildId>/checkout.json`: the full sha the folder belongs to. */
  checkoutRecord: string;
  /** `.dot/<buildId>/worktree`: the detached checkout shared by every project at this commit. */
  worktree: string;
  /** `.dot/<buildId>/<project>`: state of one project at this commit (deps marker). */
  projectDir: string;
  /** `.dot/<buildId>/<project>/<dbtTarget>`: one build of one project against one dbt target. */
  buildDir: string;
  profilesDir: string;
  targetPath: string;
  logPath: string;
  buildRecord: string;
  /** `commands/<command>/` under the build's folder: dbt commands run on the build (core/command). */
  commandsDir: string;
}

export function dotRoot(workspaceRoot: string): string {
  return join(workspaceRoot, DOT_FOLDER);
}

export function locksDir(workspaceRoot: string): string {
  return join(dotRoot(workspaceRoot), 'locks');
}

/** `.dot/locks/leases/<commit>`: one lease per build running at that commit (see holdLease). */
export function leasesDir(workspaceRoot: string, commit: string): string {
  return join(locksDir(workspaceRoot), 'leases', commit);
}

/** `.dot/tmp`: the small dbt projects of running operations (dbt/operation.ts), one folder each. */
export function operationsDir(workspaceRoot: string): string {
  return join(dotRoot(workspaceRoot), 'tmp');
}

/** What a mark notes about a project's builds at a commit: a clean's drop, a forced rebuild (cache/key-marks.ts). */
export type MarkKind = 'dropped' | 'rebuilt';

/** `.dot/<kind>/<project>/<commit>.json`: the marks of one kind, which join the build key (cache/key-marks.ts). */
export function marksDir(workspaceRoot: string, kind: MarkKind): string {
  return join(dotRoot(workspaceRoot), kind);
}

/**
 * `.dot/cache/<project>`: the folder Nx caches and restores, holding a build's artifacts under
 * its key. Nx cannot name the commit's folder in a task's outputs, so a hit is copied from here
 * into `.dot/<short_hash>/…` after Nx has restored it.
 */
export function stagingDir(workspaceRoot: string, project: string): string {
  return join(dotRoot(workspaceRoot), 'cache', project);
}

export function commitPaths(workspaceRoot: string, buildId: string) {
  const commitDir = join(dotRoot(workspaceRoot), buildId);
  return {
    commitDir,
    checkoutRecord: join(commitDir, 'checkout.json'),
    worktree: join(commitDir, 'worktree'),
  };
}

export function buildPaths(workspaceRoot: string, buildId: string, project: string, dbtTarget: string): BuildPaths {
  const commit = commitPaths(workspaceRoot, buildId);
  const projectDir = join(commit.commitDir, folderName(project));
  const buildDir = join(projectDir, folderName(dbtTarget));
  return {
    ...commit,
    projectDir,
    buildDir,
    profilesDir: join(buildDir, 'profiles'),
    targetPath: join(buildDir, 'target'),
    logPath: join(buildDir, 'logs'),
    buildRecord: join(buildDir, 'build.json'),
    commandsDir: join(buildDir, 'commands'),
  };
}

/** Nx project names may hold `/` (`@scope/name`) and dbt target names anything: one folder each. */
function folderName(name: string): string {
  return encodeURIComponent(name);
}

/**
 * Creates `.dot` with a `.gitignore` holding `*`, which keeps the folder out of `git status`
 * and out of Nx's project graph even where the workspace's own `.gitignore` does not name it:
 * a checkout under `.dot` holds a second copy of every `dbt_project.yml`. A `.dot` that cannot
 * be made or written to (a file in its place, no permission, a read-only disk) is a UserError.
 */
export function ensureDotFolder(workspaceRoot: string): string {
  const root = dotRoot(workspaceRoot);
  const gitignore = join(root, '.gitignore');
  try {
    if (!existsSync(gitignore)) {
      mkdirSync(root, { recursive: true });
      writeFileSync(gitignore, '# Written by nx-dbt-isolated: keeps isolated builds out of git and Nx.\n*\n');
    }
    accessSync(root, constants.W_OK);
  } catch (error) {
    throw unwritableDotFolder(root, error as NodeJS.ErrnoException);
  }
  return root;
}

function unwritableDotFolder(root: string, error: NodeJS.ErrnoException): UserError {
  const code = error.code ?? 'error';
  if (isSomethingButAFolder(root)) {
    return new UserError(
      `${root} is not a folder (${code}), so isolated builds have nowhere to keep their checkouts: move that file out of the way (nx-dbt-isolated owns ${DOT_FOLDER}), then build again.`,
    );
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new UserError(
      `cannot write to ${root} (${code}), where isolated builds keep their checkouts: give your user write access to it${existsSync(root) ? '' : ' (or to the folder that holds it)'}, or run from a workspace on a writable disk.`,
    );
  }
  return new UserError(
    `cannot create ${root} (${code}: ${error.message.split('\n')[0]}), where isolated builds keep their checkouts: make it a folder you can write to, then build again.`,
  );
}

function isSomethingButAFolder(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return false;
  }
}
