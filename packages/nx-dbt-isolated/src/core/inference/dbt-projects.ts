import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { minimatch } from 'minimatch';
import { DBT_PROJECT_FILE, localPackagesInstalledBy, type ReadRepositoryFile } from '../dbt/project';

/** A dbt project of the workspace: its folder and what its dbt_project.yml says. */
export interface FoundDbtProject {
  /** Its folder as the repository names it: '' for the workspace root (projectRootOf). */
  root: string;
  name: string;
  profile?: string;
}

/** What the plugin makes of a dbt project: its Nx name, and whether it gets build targets. */
export interface InferredDbtProject {
  /** The dbt name; where a project nearer the workspace root has it too, the folder path (see nxNames). */
  nxName: string;
  /** Why the project gets no build targets; undefined when it gets them. */
  notBuilt?: string;
}

export interface InferenceOptions {
  /** Globs of folders of dbt projects used as packages that get build targets all the same. */
  buildablePackages?: string[];
}

/** Folders whose dbt projects are copies, never the user's own: checkouts and installed node packages. */
const COPY_FOLDERS = new Set(['.dot', 'node_modules']);
/** Python installs dbt's own bundled projects (starter templates, adapters' macros) here. */
const PYTHON_PACKAGE_FOLDERS = new Set(['site-packages', 'dist-packages', '__pypackages__']);
/** A folder holding one of these is a Python environment (venv's pyvenv.cfg, conda's conda-meta). */
const PYTHON_ENVIRONMENT_MARKERS = ['pyvenv.cfg', 'conda-meta'];
/** dbt's own output folders of a project: packages it installed, build output, logs. */
const DBT_OUTPUT_FOLDERS = new Set(['dbt_packages', 'target', 'logs']);

/**
 * The user's dbt projects among the matched dbt_project.yml files: none inside checkouts, node
 * packages or Python environments (whatever .gitignore says), nor in dbt's output folders of
 * another project. A `target` or `logs` folder counts as output only inside another dbt project,
 * so a project that lives in a folder named `logs` stays.
 */
export function userDbtProjectFiles(files: readonly string[], workspaceRoot: string): string[] {
  const matched = new Set(files);
  const isPythonEnvironment = memoized((folder: string) =>
    PYTHON_ENVIRONMENT_MARKERS.some((marker) => existsSync(join(workspaceRoot, folder, marker))),
  );
  return files.filter((file) => {
    const segments = file.split('/');
    return !segments.slice(0, -1).some((segment, index) => {
      const parent = segments.slice(0, index).join('/');
      const folder = segments.slice(0, index + 1).join('/');
      if (COPY_FOLDERS.has(segment) || PYTHON_PACKAGE_FOLDERS.has(segment)) return true;
      if (isPythonEnvironment(folder)) return true;
      return (
        DBT_OUTPUT_FOLDERS.has(segment) && matched.has(parent ? `${parent}/${DBT_PROJECT_FILE}` : DBT_PROJECT_FILE)
      );
    });
  });
}

/**
 * The Nx project each dbt project becomes. Nx needs unique names: of the dbt projects sharing a
 * `name:`, the one nearest the workspace root (then the first by folder) keeps it, each other is
 * named by its folder path, `/` made `-` (`vendor-dbt_utils-integration_tests`). A project gets
 * no build targets when it has no profile, when another project installs it as a `local:`
 * package, or when it lies inside such a package's folder below the workspace root (a vendored
 * package's integration_tests): dbt builds those only as parts of the projects that use them.
 * `buildablePackages` asks for targets anyway. (A workspace that is itself a dbt package keeps
 * its integration_tests buildable: they are its author's.)
 */
export async function inferDbtProjects(
  found: readonly FoundDbtProject[],
  read: ReadRepositoryFile,
  options: InferenceOptions = {},
): Promise<Map<string, InferredDbtProject>> {
  const names = nxNames(found);
  const installers = installersOf(await localPackageInstalls(found, read));
  const packageFolders: string[] = [];
  const inferred = new Map<string, InferredDbtProject>();
  for (const project of [...found].sort(byDepthThenFolder)) {
    const notBuilt = whyNotBuilt(project, installers.get(project.root) ?? [], packageFolders, options);
    const isPackage = notBuilt !== undefined && !isAsked(project.root, options);
    if (isPackage && project.root !== '') packageFolders.push(project.root);
    inferred.set(project.root, { nxName: names.get(project.root)!, ...(notBuilt && { notBuilt }) });
  }
  return inferred;
}

/** The folder of every local package each project with a profile installs, theirs in turn (dbt's rule). */
export async function localPackageInstalls(
  found: readonly FoundDbtProject[],
  read: ReadRepositoryFile,
): Promise<Map<string, string[]>> {
  const installs = new Map<string, string[]>();
  for (const project of found) {
    if (project.profile !== undefined) installs.set(project.root, await localPackagesInstalledBy(project.root, read));
  }
  return installs;
}

function whyNotBuilt(
  project: FoundDbtProject,
  installers: readonly string[],
  packageFolders: readonly string[],
  options: InferenceOptions,
): string | undefined {
  if (project.profile === undefined) return 'it has no profile, so dbt builds it only as a package of another project';
  if (isAsked(project.root, options)) return undefined;
  if (installers.length > 0) {
    const named = installers.map((root) => root || '.').join(', ');
    return `${named} install${installers.length === 1 ? 's' : ''} it as a local package (list it in the plugin's buildablePackages to build it on its own)`;
  }
  const enclosing = packageFolders.find((folder) => isInside(project.root, folder));
  if (enclosing !== undefined) {
    return `it lies inside the package at ${enclosing} (list it in the plugin's buildablePackages to build it on its own)`;
  }
  return undefined;
}

/** The projects installing each project as a local package, by the package's folder. */
export function installersOf(installs: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const installers = new Map<string, string[]>();
  for (const [root, folders] of installs) {
    for (const folder of folders) installers.set(folder, [...(installers.get(folder) ?? []), root]);
  }
  return installers;
}

function nxNames(found: readonly FoundDbtProject[]): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  const sorted = [...found].sort(byDepthThenFolder);
  for (const project of sorted) {
    if (!taken.has(project.name)) {
      names.set(project.root, project.name);
      taken.add(project.name);
    }
  }
  for (const project of sorted) {
    if (names.has(project.root)) continue;
    const byFolder = project.root.replace(/\//g, '-') || project.name;
    let name = byFolder;
    for (let n = 2; taken.has(name); n++) name = `${byFolder}-${n}`;
    names.set(project.root, name);
    taken.add(name);
  }
  return names;
}

function isAsked(root: string, options: InferenceOptions): boolean {
  return (options.buildablePackages ?? []).some((glob) => minimatch(root || '.', glob.replace(/\/+$/, '')));
}

const depth = (root: string) => (root === '' ? 0 : root.split('/').length);

function byDepthThenFolder(a: FoundDbtProject, b: FoundDbtProject): number {
  return depth(a.root) - depth(b.root) || (a.root < b.root ? -1 : a.root > b.root ? 1 : 0);
}

const isInside = (folder: string, parent: string) => folder.startsWith(`${parent}/`);

function memoized<T>(compute: (key: string) => T): (key: string) => T {
  const values = new Map<string, T>();
  return (key) => {
    if (!values.has(key)) values.set(key, compute(key));
    return values.get(key)!;
  };
}

/** The repository folder of a dbt_project.yml path. */
export const projectRootOf = (file: string) => (posix.dirname(file) === '.' ? '' : posix.dirname(file));
