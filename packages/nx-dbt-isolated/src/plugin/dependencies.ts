import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import {
  DependencyType,
  type CreateDependencies,
  type CreateDependenciesContext,
  type ProjectConfiguration,
  type StaticDependency,
} from '@nx/devkit';
import { DBT_PROJECT_FILE, PACKAGE_FILES, parseDbtProject, parsePackageReferences } from '../core/dbt/project';
import type { DbtIsolatedPluginOptions } from './nodes';

/**
 * An edge from a dbt project to each project it uses: the `local:` packages of its packages.yml
 * or dependencies.yml (by folder) and the dbt Mesh `projects:` of its dependencies.yml (by dbt
 * project name). Only the files changed since Nx's cached graph are read: Nx keeps the edges of
 * the others, as each edge names the file it comes from.
 */
export const createDependencies: CreateDependencies<DbtIsolatedPluginOptions> = (_options, context) => {
  const projectsByDbtName = lazy(() => dbtProjectNames(context));
  const dependencies: StaticDependency[] = [];
  for (const [source, files] of Object.entries(context.filesToProcess.projectFileMap)) {
    const root = context.projects[source]?.root;
    if (root === undefined) continue;
    for (const { file } of files) {
      if (!isPackageFileOf(root, file)) continue;
      const references = parsePackageReferences(readFileSync(join(context.workspaceRoot, file), 'utf8'));
      const targets = [
        ...references.local.flatMap((path) => projectOwning(context.projects, posix.join(root, path)) ?? []),
        ...references.projects.flatMap((name) => projectsByDbtName().get(name) ?? []),
      ];
      for (const target of new Set(targets)) {
        if (target !== source) dependencies.push({ source, target, sourceFile: file, type: DependencyType.static });
      }
    }
  }
  return dependencies;
};

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

/** The Nx project of each dbt project, by the name in its dbt_project.yml. */
function dbtProjectNames(context: CreateDependenciesContext): Map<string, string> {
  const names = new Map<string, string>();
  for (const [project, { root }] of Object.entries(context.projects)) {
    const file = fileIn(root, DBT_PROJECT_FILE);
    const owned = context.fileMap.projectFileMap[project] ?? [];
    if (!owned.some((data) => data.file === file)) continue;
    try {
      names.set(parseDbtProject(readFileSync(join(context.workspaceRoot, file), 'utf8'), file).name, project);
    } catch {
      // createNodes reports a broken dbt_project.yml; here it simply names no project.
    }
  }
  return names;
}

function lazy<T>(make: () => T): () => T {
  let value: { made: T } | undefined;
  return () => (value ??= { made: make() }).made;
}
