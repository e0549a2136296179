import { posix } from 'node:path';
import { simpleGit } from 'simple-git';
import { parse } from 'yaml';
import { DBT_PROJECT_FILE, localPackageFolder, localPackagesInstalledBy, repositoryFolder } from '../dbt/project';

/** The repository folders a checkout holds: a few (git's cone-mode sparse checkout) or all of it. */
export type CheckoutFolders = string[] | 'all';

export interface CheckoutScope {
  folders: CheckoutFolders;
  /** Why every file is checked out, when the build asked for a sparse checkout and cannot have one. */
  fullBecause?: string;
}

/** Reads a file as committed, by repository-relative path; undefined when the commit has none. */
export type ReadAtCommit = (path: string) => Promise<string | undefined>;

/** dbt_project.yml keys naming folders dbt reads (the legacy names included). */
const PROJECT_PATH_KEYS = [
  'model-paths',
  'seed-paths',
  'test-paths',
  'analysis-paths',
  'macro-paths',
  'snapshot-paths',
  'docs-paths',
  'asset-paths',
  'function-paths',
  'source-paths',
  'data-paths',
];

/** Git learned cone-mode patterns (`core.sparseCheckoutCone`) in 2.25. */
const SPARSE_GIT_VERSION = { major: 2, minor: 25 };

class NeedsEveryFile extends Error {}

/**
 * The folders a build of the dbt project at `projectPath` reads at a commit: the project, the
 * `local:` packages it installs (theirs too, each path resolved from the project as dbt does) and
 * the folders their dbt_project.yml files point to, plus `extraFolders`. Every file where that
 * cannot be known from the files alone (Jinja in a path, a project at the repository's root) or
 * git is too old.
 */
export async function checkoutScope(
  repoRoot: string,
  commit: string,
  projectPath: string,
  extraFolders: readonly string[] = [],
): Promise<CheckoutScope> {
  const git = simpleGit(repoRoot);
  const { major, minor, installed } = await git.version();
  const tooOld =
    major < SPARSE_GIT_VERSION.major || (major === SPARSE_GIT_VERSION.major && minor < SPARSE_GIT_VERSION.minor);
  if (!installed || tooOld) {
    return { folders: 'all', fullBecause: `git ${major}.${minor} is older than 2.25, which sparse checkout needs` };
  }
  const read: ReadAtCommit = (path) => git.raw(['cat-file', '-p', `${commit}:${path}`]).catch(() => undefined);
  return foldersForProject(read, projectPath, extraFolders);
}

export async function foldersForProject(
  read: ReadAtCommit,
  projectPath: string,
  extraFolders: readonly string[] = [],
): Promise<CheckoutScope> {
  const project = repositoryFolder(projectPath);
  const folders = new Set<string>();
  try {
    const packages = await localPackagesInstalledBy(project, read, (root, path, file) =>
      folderInRepository(root, path, `${file} has local: ${path}`),
    );
    for (const folder of [project, ...packages]) {
      folders.add(folder);
      for (const named of await foldersNamedBy(read, folder, PROJECT_PATH_KEYS)) folders.add(named);
    }
    for (const extra of extraFolders) {
      const folder = folderInRepository('', extra, `checkoutFolders has ${extra}`);
      if (folder !== undefined) folders.add(folder);
    }
  } catch (error) {
    if (error instanceof NeedsEveryFile) return { folders: 'all', fullBecause: error.message };
    throw error;
  }
  if (folders.has('')) return { folders: 'all', fullBecause: 'the build reads the repository root folder' };
  return { folders: outermost([...folders]) };
}

async function foldersNamedBy(read: ReadAtCommit, project: string, keys: readonly string[]): Promise<string[]> {
  const file = posix.join(project, DBT_PROJECT_FILE);
  const fields = await readYaml(read, file);
  const paths = keys.flatMap((key) => stringsIn(fields?.[key]).map((path) => ({ key, path })));
  return paths.flatMap(({ key, path }) => folderInRepository(project, path, `${file} sets ${key}`) ?? []);
}

/**
 * The repository folder a path read from the project at `base` names (dbt_project.yml's paths are
 * the project's own; `local:` paths are the root project's); undefined outside the repository.
 */
function folderInRepository(base: string, path: string, where: string): string | undefined {
  if (path.includes('{{') || path.includes('{%')) {
    throw new NeedsEveryFile(`${where} with Jinja, so only dbt knows which folders the build reads`);
  }
  return localPackageFolder(base, path);
}

async function readYaml(read: ReadAtCommit, file: string): Promise<Record<string, unknown> | undefined> {
  const text = await read(file);
  if (text === undefined) return undefined;
  try {
    const content: unknown = parse(text);
    return content && typeof content === 'object' ? (content as Record<string, unknown>) : undefined;
  } catch {
    // dbt itself reports the broken file when the build parses the project.
    return undefined;
  }
}

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The folders not inside another of them, sorted: a cone covers everything beneath it. */
export function outermost(folders: readonly string[]): string[] {
  const sorted = [...new Set(folders)].sort();
  return sorted.filter((folder) => !sorted.some((other) => other !== folder && folder.startsWith(`${other}/`)));
}

/**
 * git's cone-mode pattern file for `folders`: the root's files, each folder's parents' own files
 * and everything beneath each folder.
 */
export function conePatterns(folders: readonly string[]): string {
  const recursive = outermost(folders);
  const parents = new Set(recursive.flatMap((folder) => ancestors(folder)));
  const lines = ['/*', '!/*/'];
  for (const folder of [...new Set([...parents, ...recursive])].sort()) {
    const pattern = `/${escapePattern(folder)}/`;
    lines.push(pattern);
    if (parents.has(folder)) lines.push(`!${pattern}*/`);
  }
  return `${lines.join('\n')}\n`;
}

/** The folders a pattern file written by conePatterns checks out in full. */
export function foldersInPatterns(text: string): string[] {
  const lines = text.split('\n').filter((line) => line !== '');
  return lines
    .filter((line, index) => /^\/.+\/$/.test(line) && lines[index + 1] !== `!${line}*/`)
    .map((line) => line.slice(1, -1).replace(/\\(.)/g, '$1'));
}

function ancestors(folder: string): string[] {
  const segments = folder.split('/');
  return segments.slice(1).map((_, index) => segments.slice(0, index + 1).join('/'));
}

function escapePattern(folder: string): string {
  return folder.replace(/[\\*?[\]]/g, (char) => `\\${char}`);
}
