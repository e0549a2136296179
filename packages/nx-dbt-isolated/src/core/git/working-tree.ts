import { realpathSync } from 'node:fs';
import { join, relative } from 'node:path';
import { simpleGit } from 'simple-git';
import { localPackagesInstalledBy } from '../dbt/project';
import { PROFILES_FILE } from '../dbt/profiles';
import { readTextIfExists } from '../workspace/files';
import { repositoryRoot } from './refs';
import type { CheckoutFolders } from './sparse';

/**
 * The files under `folders` (repository-relative; the whole repository for 'all') that differ
 * from HEAD in the user's working tree or index, or are new and not ignored. Read with
 * `--no-optional-locks`, so git does not refresh (write) the user's index while looking.
 */
export async function uncommittedFiles(repoRoot: string, folders: CheckoutFolders): Promise<string[]> {
  const everything = folders === 'all' || folders.includes('');
  const pathspecs = everything ? [] : folders.map((folder) => `:(top,literal)${folder}`);
  const status = await simpleGit(repoRoot).raw([
    '--no-optional-locks',
    'status',
    '--porcelain=v1',
    '-z',
    '--untracked-files=all',
    '--',
    ...pathspecs,
  ]);
  const entries = status.split('\0').filter((entry) => entry !== '');
  const files: string[] = [];
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index];
    files.push(entry.slice(3));
    // A rename or copy, in the index or the working tree, is followed by its origin's path.
    if (/[RC]/.test(entry.slice(0, 2))) index++;
  }
  return files;
}

/** A build of `commit` (asked for as `ref`) of the project at `projectRoot` in the workspace. */
export interface BuiltCommit {
  workspaceRoot: string;
  projectRoot: string;
  project: string;
  ref: string;
  commit: string;
}

/**
 * The line saying that a build of the commit checked out in the working tree left out the
 * uncommitted changes of the project and of the local packages it installs; undefined when there
 * are none, or when the build is of another commit (`head`: the working tree's commit, when the
 * caller knows it). The project's profiles.yml does not count: builds connect with the working
 * tree's.
 */
export async function uncommittedChangesWarning(build: BuiltCommit, head?: string): Promise<string | undefined> {
  const repoRoot = await repositoryRoot(build.workspaceRoot);
  const checkedOut = head ?? (await simpleGit(repoRoot).revparse(['HEAD'])).trim();
  if (checkedOut !== build.commit) return undefined;
  const projectPath = relative(repoRoot, join(realpathSync(build.workspaceRoot), build.projectRoot));
  const read = (path: string) => readTextIfExists(join(repoRoot, path));
  const folders = [projectPath, ...(await localPackagesInstalledBy(projectPath, read))];
  const profiles = projectPath === '' ? PROFILES_FILE : `${projectPath}/${PROFILES_FILE}`;
  const changed = (await uncommittedFiles(repoRoot, folders)).filter((file) => file !== profiles);
  if (changed.length === 0) return undefined;
  const files = changed.length === 1 ? `1 file (${changed[0]})` : `${changed.length} files`;
  const where = folders.map((folder) => folder || '.').join(', ');
  return `${build.project}: uncommitted changes to ${files} in ${where} are not in this build of ${build.ref} (${build.commit.slice(0, 8)}), which built the commit: commit them (or git stash them) to build them.`;
}
