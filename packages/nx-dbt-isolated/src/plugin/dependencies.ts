import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import {
  DependencyType,
  type CreateDependencies,
  type CreateDependenciesContext,
  type ProjectConfiguration,
  type StaticDependency,
} from '@nx/devkit';
import {
  DBT_PROJECT_FILE,
  localPackageFolder,
  localPackagesInstalledBy,
  PACKAGE_FILES,
  parseDbtProject,
  parsePackageReferences,
  repositoryFolder,
} from '../core/dbt/project';
import { installersOf, localPackageInstalls, type FoundDbtProject } from '../core/inference/dbt-projects';
import { readTextIfExists } from '../core/workspace/files';
import type { DbtIsolatedPluginOptions } from './nodes';

/**
 * An edge from a dbt project to each project it uses: the `local:` packages of its packages.yml
 * or dependencies.yml (by folder) and the dbt Mesh projects of its dependencies.yml (by dbt
 * project name). dbt resolves every `local:` path from the root project it builds, a package's
 * own paths too: a package's paths are resolved from each project that installs it, and a
 * project with a profile gets an edge to every package its build installs. Only the files
 * changed since Nx's cached graph are read: Nx keeps the edges of the others, as each edge names
 * the file it comes from, so an edge that also depends on another file can outlive a change
 * there (ADR 33).
 */
export const createDependencies: CreateDependencies<DbtIsolatedPluginOptions> = async (_options, context) => {
  const workspace = lazy(() => dbtProjectsOf(context));
  const read = (path: string) => readTextIfExists(join(context.workspaceRoot, path));
  const installs = lazy(() => localPackageInstalls(workspace().found, read));
  const installers = lazy(async () => installersOf(await installs()));
  const dependencies: StaticDependency[] = [];
  for (const [source, files] of Object.entries(context.filesToProcess.projectFileMap)) {
    const root = context.projects[source]?.root;
    if (root === undefined) continue;
    for (const { file } of files) {
      if (!isPackageFileOf(root, file)) continue;
      const references = parsePackageReferences(readFileSync(join(context.workspaceRoot, file), 'utf8'));
      const folder = repositoryFolder(root);
      const packageFolders: string[] = [];
      for (const base of resolvingRoots(folder, workspace().found, await installers())) {
        const named = references.local.flatMap((path) => localPackageFolder(base, path) ?? []);
        // What a build of the project itself installs through this file, packages of packages too.
        const installed = base === folder ? await localPackagesInstalledBy(folder, read, undefined, named) : named;
        packageFolders.push(...installed);
      }
      const targets = [
        ...packageFolders.flatMap((packageFolder) => projectOwning(context.projects, packageFolder) ?? []),
        ...references.projects.flatMap((name) => workspace().byDbtName.get(name) ?? []),
      ];
      for (const target of new Set(targets)) {
        if (target !== source) dependencies.push({ source, target, sourceFile: file, type: DependencyType.static });
      }
    }
  }
  return dependencies;
};

/**
 * The folders dbt resolves the `local:` paths of the project at `folder` from: each project that
 * installs it, and its own when it is built on its own (it has a profile) or nobody installs it.
 */
function resolvingRoots(
  folder: string,
  found: readonly FoundDbtProject[],
  installersByFolder: Map<string, string[]>,
): string[] {
  const installers = installersByFolder.get(folder) ?? [];
  const own = found.find((project) => project.root === folder);
  return own?.profile !== undefined || installers.length === 0 ? [folder, ...installers] : installers;
}

function isPackageFileOf(root: string, file: string): boolean {
  return PACKAGE_FILES.some((name) => file === fileIn(root, name));
}

const isWorkspaceRoot = (root: string) => root === '.' || root === '';
const fileIn = (root: string, name: string) => (isWorkspaceRoot(root) ? name : `${root}/${name}`);

/** The project whose root holds `folder` (the deepest such root); none outside every project. */
export function projectOwning(projects: Record<string, ProjectConfiguration>, folder: string): string | undefined {
  const path = posix.normalize(folder);
  if (path === '..' || path.startsWith('../')) return undefined;
  let owner: { name: string; depth: number } | undefined;
  for (const [name, { root }] of Object.entries(projects)) {
    if (!isWorkspaceRoot(root) && path !== root && !path.startsWith(`${root}/`)) continue;
    const depth = isWorkspaceRoot(root) ? 0 : root.split('/').length;
    if (!owner || depth > owner.depth) owner = { name, depth };
  }
  return owner?.name;
}

/** The workspace's dbt projects, and the Nx project of each by its dbt name (the one keeping the name, where two share it). */
function dbtProjectsOf(context: CreateDependenciesContext): {
  found: FoundDbtProject[];
  byDbtName: Map<string, string>;
} {
  const found: FoundDbtProject[] = [];
  const byDbtName = new Map<string, string>();
  for (const [project, { root }] of Object.entries(context.projects)) {
    const file = fileIn(root, DBT_PROJECT_FILE);
    const owned = context.fileMap.projectFileMap[project] ?? [];
    if (!owned.some((data) => data.file === file)) continue;
    try {
      const { name, profile } = parseDbtProject(readFileSync(join(context.workspaceRoot, file), 'utf8'), file);
      found.push({ root: repositoryFolder(root), name, ...(profile !== undefined && { profile }) });
      if (!byDbtName.has(name) || project === name) byDbtName.set(name, project);
    } catch {
      // createNodes reports a broken dbt_project.yml; here it simply names no project.
    }
  }
  return { found, byDbtName };
}

function lazy<T>(make: () => T): () => T {
  let value: { made: T } | undefined;
  return () => (value ??= { made: make() }).made;
}
