import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  createNodesFromFiles,
  type CreateNodesContextV2,
  type CreateNodesResult,
  type CreateNodesV2,
  type TargetConfiguration,
} from '@nx/devkit';
import { calculateHashesForCreateNodes, hashObject, PluginCache, workspaceDataDirectory } from '@nx/devkit/internal';
import { parseDbtProject } from '../core/dbt-project';

export interface DbtIsolatedPluginOptions {
  /** Name of the inferred isolated build target. Default: `isolated-build`. */
  isolatedBuildTargetName?: string;
}

type NormalizedOptions = Required<DbtIsolatedPluginOptions>;

const DBT_PROJECT_GLOB = '**/dbt_project.yml';

/** Copies of dbt projects that are not the user's projects: checkouts, installed packages, build output. */
const IGNORED_FOLDERS = new Set(['.dot', 'dbt_packages', 'target', 'logs', 'node_modules']);

export const createNodes: CreateNodesV2<DbtIsolatedPluginOptions> = [
  DBT_PROJECT_GLOB,
  async (files, rawOptions, context) => {
    const options = normalizeOptions(rawOptions);
    const projectFiles = files.filter((file) => !file.split('/').some((segment) => IGNORED_FOLDERS.has(segment)));
    const cache = new PluginCache<CreateNodesResult>(
      join(workspaceDataDirectory, `nx-dbt-isolated-${hashObject(options)}.hash`),
    );
    const hashes = await calculateHashesForCreateNodes(projectFiles.map(dirname), options, context);
    try {
      return await createNodesFromFiles(
        (file, _options, nodeContext, index) => {
          const hash = hashes[index];
          const cached = cache.get(hash);
          if (cached) return cached;
          const nodes = dbtProjectNodes(file, options, nodeContext);
          cache.set(hash, nodes);
          return nodes;
        },
        projectFiles,
        options,
        context,
      );
    } finally {
      cache.writeToDisk();
    }
  },
];

export function normalizeOptions(options: DbtIsolatedPluginOptions | undefined): NormalizedOptions {
  return { isolatedBuildTargetName: options?.isolatedBuildTargetName ?? 'isolated-build' };
}

export function dbtProjectNodes(
  file: string,
  options: NormalizedOptions,
  context: Pick<CreateNodesContextV2, 'workspaceRoot'>,
): CreateNodesResult {
  const root = dirname(file);
  const dbtProject = parseDbtProject(readFileSync(join(context.workspaceRoot, file), 'utf8'), file);
  return {
    projects: {
      [root]: {
        name: dbtProject.name,
        root,
        metadata: { technologies: ['dbt'], description: `dbt project ${dbtProject.name}` },
        targets: { [options.isolatedBuildTargetName]: isolatedBuildTarget(dbtProject.name, options) },
      },
    },
  };
}

function isolatedBuildTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: 'nx-dbt-isolated:isolated-build',
    options: {},
    // Not cacheable until the cache key is the commit: Nx's default inputs would serve a stale
    // build of a branch that has moved.
    cache: false,
    metadata: {
      technologies: ['dbt'],
      description: `Build the dbt project at a git commit into <schema>_<short_hash>, e.g. nx run ${project}:${options.isolatedBuildTargetName} --ref=main`,
    },
  };
}
