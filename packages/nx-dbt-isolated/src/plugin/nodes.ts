import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createNodesFromFiles, type CreateNodesResult, type CreateNodesV2, type TargetConfiguration } from '@nx/devkit';
import { hashObject, PluginCache, workspaceDataDirectory } from '@nx/devkit/internal';
import { pluginVersion } from '../core/cache/key';
import { parseDbtProject } from '../core/dbt/project';
import { PROFILES_FILE, targetsOfProfile } from '../core/dbt/profiles';
import {
  buildKeyVariable,
  CLEAN_EXECUTOR,
  DBT_TARGET_FROM_CLI,
  DEFAULT_TARGET_NAMES,
  DIFF_EXECUTOR,
  ISOLATED_BUILD_EXECUTOR,
  PROMOTE_EXECUTOR,
} from '../contract';

export interface DbtIsolatedPluginOptions {
  /** Name of the inferred isolated build target. Default: `isolated-build`. */
  isolatedBuildTargetName?: string;
  /** Name of the inferred clean target. Default: `clean`. */
  cleanTargetName?: string;
  /** Name of the inferred diff target. Default: `diff`. */
  diffTargetName?: string;
  /** Name of the inferred promote target. Default: `promote`. */
  promoteTargetName?: string;
  /**
   * dbt targets that get a configuration of each inferred target (`nx run analytics:isolated-build:prod`).
   * Default: the targets of the project's profile in the profiles.yml beside its dbt_project.yml.
   */
  dbtTargets?: string[];
}

type NormalizedOptions = Required<Omit<DbtIsolatedPluginOptions, 'dbtTargets'>> & {
  dbtTargets?: string[];
  /** Nx 24 selects affected tasks by their file inputs, unless nx.json asks for `affected.legacy`. */
  taskLevelAffected: boolean;
};

const DBT_PROJECT_GLOB = '**/dbt_project.yml';

/** Folders whose dbt projects are copies, never the user's own: checkouts and installed node packages. */
const COPY_FOLDERS = new Set(['.dot', 'node_modules']);
/** dbt's own output folders of a project: packages it installed, build output, logs. */
const DBT_OUTPUT_FOLDERS = new Set(['dbt_packages', 'target', 'logs']);

/**
 * The user's dbt projects among the matched files. A `target` or `logs` folder counts as dbt's
 * output only inside another dbt project, so a project that lives in a folder named `logs` stays.
 */
export function userDbtProjectFiles(files: readonly string[]): string[] {
  const matched = new Set(files);
  return files.filter((file) => {
    const segments = file.split('/');
    return !segments.some((segment, index) => {
      if (COPY_FOLDERS.has(segment)) return true;
      const parent = segments.slice(0, index).join('/');
      return DBT_OUTPUT_FOLDERS.has(segment) && matched.has(parent ? `${parent}/dbt_project.yml` : 'dbt_project.yml');
    });
  });
}

export const createNodes: CreateNodesV2<DbtIsolatedPluginOptions> = [
  DBT_PROJECT_GLOB,
  async (files, rawOptions, context) => {
    const options = normalizeOptions(rawOptions, context.nxJsonConfiguration as NxJsonAffected);
    // The plugin's version names the file: an upgrade must not serve targets inferred by the old one.
    const cache = new PluginCache<CreateNodesResult>(
      join(workspaceDataDirectory, `nx-dbt-isolated-${pluginVersion()}-${hashObject(options)}.hash`),
    );
    try {
      return await createNodesFromFiles(
        (file, _options, nodeContext) => {
          // A project's nodes follow from its dbt_project.yml and the profiles.yml beside it:
          // their text is the cache key. (Hashing each project's folder through Nx costs more
          // than parsing the files again.)
          const text = readFileSync(join(nodeContext.workspaceRoot, file), 'utf8');
          const profiles = readIfExists(join(nodeContext.workspaceRoot, dirname(file), PROFILES_FILE));
          const key = createHash('sha256')
            .update(file)
            .update('\0')
            .update(text)
            .update('\0')
            .update(profiles ?? '');
          const cacheKey = key.digest('hex');
          const cached = cache.get(cacheKey);
          if (cached) return cached;
          const nodes = dbtProjectNodes(file, text, options, profiles);
          cache.set(cacheKey, nodes);
          return nodes;
        },
        userDbtProjectFiles(files),
        options,
        context,
      );
    } finally {
      cache.writeToDisk();
    }
  },
];

/** `affected.legacy` exists from Nx 24 on; Nx 23's types do not know it. */
type NxJsonAffected = { affected?: { legacy?: boolean } };

export function normalizeOptions(
  options: DbtIsolatedPluginOptions | undefined,
  nxJson: NxJsonAffected = {},
  nxVersion = installedNxVersion(),
): NormalizedOptions {
  return {
    isolatedBuildTargetName: options?.isolatedBuildTargetName ?? DEFAULT_TARGET_NAMES.isolatedBuild,
    cleanTargetName: options?.cleanTargetName ?? DEFAULT_TARGET_NAMES.clean,
    diffTargetName: options?.diffTargetName ?? DEFAULT_TARGET_NAMES.diff,
    promoteTargetName: options?.promoteTargetName ?? DEFAULT_TARGET_NAMES.promote,
    ...(options?.dbtTargets !== undefined && { dbtTargets: options.dbtTargets }),
    taskLevelAffected: Number(nxVersion.split('.')[0]) >= 24 && nxJson.affected?.legacy !== true,
  };
}

function installedNxVersion(): string {
  return JSON.parse(readFileSync(require.resolve('nx/package.json'), 'utf8')).version;
}

export function dbtProjectNodes(
  file: string,
  text: string,
  options: NormalizedOptions,
  profilesText?: string,
): CreateNodesResult {
  const root = dirname(file);
  const dbtProject = parseDbtProject(text, file);
  const dbtTargets =
    options.dbtTargets ??
    (profilesText !== undefined && dbtProject.profile !== undefined
      ? targetsOfProfile(profilesText, join(root, PROFILES_FILE), dbtProject.profile)
      : []);
  const withConfigurations = (target: TargetConfiguration) => ({ ...target, ...dbtTargetConfigurations(dbtTargets) });
  // Without a profile dbt cannot build the project on its own: it is a package for others.
  const buildable = dbtProject.profile !== undefined;
  return {
    projects: {
      [root]: {
        name: dbtProject.name,
        root,
        metadata: {
          technologies: ['dbt'],
          description: buildable ? `dbt project ${dbtProject.name}` : `dbt package ${dbtProject.name} (no profile)`,
        },
        targets: buildable
          ? {
              [options.isolatedBuildTargetName]: withConfigurations(isolatedBuildTarget(dbtProject.name, options)),
              [options.cleanTargetName]: withConfigurations(cleanTarget(dbtProject.name, options)),
              [options.diffTargetName]: withConfigurations(diffTarget(dbtProject.name, options)),
              [options.promoteTargetName]: withConfigurations(promoteTarget(dbtProject.name, options)),
            }
          : {},
      },
    },
  };
}

/** What `nx show project` and the graph show of a target: what it does, its options and an example. */
function targetMetadata(
  description: string,
  task: string,
  example: Record<string, unknown>,
): TargetConfiguration['metadata'] {
  return {
    technologies: ['dbt'],
    description,
    help: { command: `npx nx run ${task} --help`, example: { options: example } },
  };
}

/** One Nx configuration per dbt target: `nx run analytics:isolated-build:prod` builds against `prod`. */
function dbtTargetConfigurations(dbtTargets: string[]): Pick<TargetConfiguration, 'configurations'> {
  if (dbtTargets.length === 0) return {};
  return { configurations: Object.fromEntries(dbtTargets.map((target) => [target, { target }])) };
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function isolatedBuildTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: ISOLATED_BUILD_EXECUTOR,
    options: {},
    cache: true,
    // The build is of a commit, not of the working tree. The key in this variable, set by the
    // plugin's preTasksExecution, stands for the commit, where the dbt target points and the
    // dbt and plugin versions; the options and configuration are hashed by Nx.
    inputs: [
      // Nx 24 finds affected tasks through file inputs: without the project's files and those of
      // the dbt projects it uses, `nx affected` would never select the build (and working-tree
      // edits then cost a rebuild). profiles.yml is keyed by where its target points, not its text.
      ...(options.taskLevelAffected
        ? ['{projectRoot}/**/*', '!{projectRoot}/profiles.yml', '^{projectRoot}/**/*']
        : []),
      { env: buildKeyVariable(project, options.isolatedBuildTargetName) },
      { env: DBT_TARGET_FROM_CLI },
      { env: 'DBT_TARGET' },
      { externalDependencies: [] },
    ],
    outputs: ['{workspaceRoot}/.dot/cache/{projectName}'],
    metadata: targetMetadata(
      `Build the dbt project at a git commit into <schema>_<short_hash>, e.g. nx run ${project}:${options.isolatedBuildTargetName} --ref=main`,
      `${project}:${options.isolatedBuildTargetName}`,
      { ref: 'main' },
    ),
  };
}

function cleanTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: CLEAN_EXECUTOR,
    options: {},
    cache: false,
    metadata: targetMetadata(
      `Remove old isolated builds, their schemas and checkouts, e.g. nx run ${project}:${options.cleanTargetName} --keep=5 --dryRun`,
      `${project}:${options.cleanTargetName}`,
      { keep: 5, dryRun: true },
    ),
  };
}

function diffTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: DIFF_EXECUTOR,
    options: { buildTarget: options.isolatedBuildTargetName },
    cache: false,
    metadata: targetMetadata(
      `Compare two commits' isolated builds, models and data, e.g. nx run ${project}:${options.diffTargetName} --base=main --head=HEAD --format=markdown`,
      `${project}:${options.diffTargetName}`,
      { base: 'main', head: 'HEAD' },
    ),
  };
}

function promoteTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: PROMOTE_EXECUTOR,
    options: { buildTarget: options.isolatedBuildTargetName },
    cache: false,
    metadata: targetMetadata(
      `Make a schema views over a commit's isolated build, switched in one transaction, e.g. nx run ${project}:${options.promoteTargetName} --ref=v1.2 --schema=analytics --dryRun`,
      `${project}:${options.promoteTargetName}`,
      { ref: 'v1.2', dryRun: true },
    ),
  };
}
