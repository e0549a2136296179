import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { UserError } from '../workspace/errors';

export const DBT_PROJECT_FILE = 'dbt_project.yml';

export interface DbtProjectFile {
  name: string;
  /** The profile dbt connects with. A project without one is a package: dbt cannot build it alone. */
  profile?: string;
}

/** `shownAs` names the file in messages: a checkout's copy under `.dot` is the commit's file. */
export function readDbtProject(projectDir: string, shownAs?: string): DbtProjectFile {
  const file = join(projectDir, DBT_PROJECT_FILE);
  return parseDbtProject(readFileSync(file, 'utf8'), shownAs ?? file);
}

export function parseDbtProject(text: string, file: string): DbtProjectFile {
  let content: unknown;
  try {
    content = parse(text);
  } catch (error) {
    throw new UserError(`${file} is not valid YAML (${(error as Error).message.split('\n')[0]}): fix the file.`);
  }
  const fields = (content ?? {}) as Record<string, unknown>;
  if (typeof fields.name !== 'string' || fields.name === '') {
    throw new UserError(`${file} has no 'name:': dbt needs one; add it.`);
  }
  const profile = typeof fields.profile === 'string' && fields.profile !== '' ? fields.profile : undefined;
  return { name: fields.name, profile };
}

/** The files where a dbt project declares what it uses. */
export const PACKAGE_FILES = ['packages.yml', 'dependencies.yml'];

/** What a packages.yml or dependencies.yml names: local packages (paths as written) and dbt Mesh projects. */
export interface PackageReferences {
  local: string[];
  projects: string[];
}

/** Reads the references of a package file; a broken file has none here, and dbt reports it. */
export function parsePackageReferences(text: string): PackageReferences {
  let content: unknown;
  try {
    content = parse(text);
  } catch {
    return { local: [], projects: [] };
  }
  const fields = (content ?? {}) as Record<string, unknown>;
  return { local: entryValues(fields.packages, 'local'), projects: entryValues(fields.projects, 'name') };
}

function entryValues(entries: unknown, key: string): string[] {
  if (!Array.isArray(entries)) return [];
  return entries.flatMap((entry) => {
    const value = (entry as Record<string, unknown> | null)?.[key];
    return typeof value === 'string' && value !== '' ? [value] : [];
  });
}

/** Reads a file by repository-relative path; undefined when there is none. */
export type ReadRepositoryFile = (path: string) => Promise<string | undefined> | string | undefined;

/**
 * The repository folder a `local:` path names, as dbt resolves it: from the folder of the root
 * project being built, also when a package of it names the path (dbt/deps/local.py joins every
 * local path to the root project). Undefined for an absolute path or one outside the repository.
 */
export function localPackageFolder(rootProject: string, path: string): string | undefined {
  if (posix.isAbsolute(path)) return undefined;
  const folder = repositoryFolder(posix.join(rootProject, path));
  return folder === '..' || folder.startsWith('../') ? undefined : folder;
}

/** A folder path as the repository names it: forward slashes, no trailing slash, '' for the root. */
export function repositoryFolder(path: string): string {
  const folder = posix.normalize(path.replace(/\\/g, '/')).replace(/\/+$/, '');
  return folder === '.' ? '' : folder;
}

/**
 * The folders of every local package a build of `rootProject` installs, theirs in turn, in the
 * order dbt deps meets them; with `through`, only those it installs through these packages (and
 * they themselves). `resolve` may refuse a path (throw) that only dbt can resolve.
 */
export async function localPackagesInstalledBy(
  rootProject: string,
  read: ReadRepositoryFile,
  resolve: (rootProject: string, path: string, file: string) => string | undefined = localPackageFolder,
  through?: readonly string[],
): Promise<string[]> {
  const root = repositoryFolder(rootProject);
  const installed = through ? through.filter((folder) => folder !== root) : [];
  const pending = through ? [...installed] : [root];
  for (let project = pending.shift(); project !== undefined; project = pending.shift()) {
    for (const name of PACKAGE_FILES) {
      const file = posix.join(project, name);
      const text = await read(file);
      for (const path of text === undefined ? [] : parsePackageReferences(text).local) {
        const folder = resolve(root, path, file);
        if (folder === undefined || folder === root || installed.includes(folder)) continue;
        installed.push(folder);
        pending.push(folder);
      }
    }
  }
  return installed;
}

/** dbt deps has work to do only where the project declares packages. */
export function declaresPackages(projectDir: string): boolean {
  return PACKAGE_FILES.some((file) => existsSync(join(projectDir, file)));
}
