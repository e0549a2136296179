import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createNodesFromFiles, type CreateNodesResult, type CreateNodesV2, type TargetConfiguration } from '@nx/devkit';
import { hashObject, PluginCache, workspaceDataDirectory } from '@nx/devkit/internal';
import { pluginVersion } from '../core/cache/key';
import { readTextIfExists } from '../core/workspace/files';
import { parseDbtProject, type DbtProjectFile } from '../core/dbt/project';
import {
  inferDbtProjects,
  projectRootOf,
  userDbtProjectFiles,
  type InferredDbtProject,
} from '../core/inference/dbt-projects';
import { PROFILES_FILE, targetsOfProfile } from '../core/dbt/profiles';
import {
  buildKeyVariable,
  CLEAN_EXECUTOR,
  DBT_TARGET_FROM_CLI,
  DEFAULT_TARGET_NAMES,
  DBT_COMMAND_EXECUTOR,
  DIFF_EXECUTOR,
  DOCS_EXECUTOR,
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
  /** Name of the inferred target that runs dbt ls, show, source freshness, docs generate or run-operation on a commit's build. Default: `dbt`. */
  dbtCommandTargetName?: string;
  /** Name of the inferred target that generates and serves a commit's dbt docs. Default: `docs`. */
  docsTargetName?: string;
  /**
   * Globs of the folders of dbt projects used as `local:` packages of others (and of projects inside
   * those packages' folders) that get build targets all the same. Default: none.
   */
  buildablePackages?: string[];
  /**
   * dbt targets that get a configuration of each inferred target (`nx run analytics:isolated-build:prod`).
   * Default: the targets of the project's profile in the profiles.yml beside its dbt_project.yml.
   */
  dbtTargets?: string[];
}

type NormalizedOptions = Required<Omit<DbtIsolatedPluginOptions, 'dbtTargets' | 'buildablePackages'>> & {
  dbtTargets?: string[];
  buildablePackages?: string[];
  /** Nx 24 selects affected tasks by their file inputs, unless nx.json asks for `affected.legacy`. */
  taskLevelAffected: boolean;
};

const DBT_PROJECT_GLOB = '**/dbt_project.yml';

export const createNodes: CreateNodesV2<DbtIsolatedPluginOptions> = [
  DBT_PROJECT_GLOB,
  async (files, rawOptions, context) => {
    const options = normalizeOptions(rawOptions, context.nxJsonConfiguration as NxJsonAffected);
    // The plugin's version names the file: an upgrade must not serve targets inferred by the old one.
    const cache = new PluginCache<CreateNodesResult | DbtProjectFile>(
      join(workspaceDataDirectory, `nx-dbt-isolated-${pluginVersion()}-${hashObject(options)}.hash`),
    );
    const read = (path: string) => readTextIfExists(join(context.workspaceRoot, path));
    const userFiles = userDbtProjectFiles(files, context.workspaceRoot);
    try {
      const parsed = new Map(userFiles.map((file) => [file, parsedOnce(file, read(file), cache)]));
      const found = [...parsed].flatMap(([file, project]) =>
        project ? [{ root: projectRootOf(file), ...project }] : [],
      );
      const inferred = await inferDbtProjects(found, read, options);
      return await createNodesFromFiles(
        (file, _options, nodeContext) => {
          // A project's nodes follow from its dbt_project.yml, the profiles.yml beside it and what
          // the workspace's other projects make of it (its name, whether it is their package):
          // those are the cache key. (Hashing each project's folder through Nx costs more than
          // parsing the files again.)
          const text = readFileSync(join(nodeContext.workspaceRoot, file), 'utf8');
          const profiles = read(join(dirname(file), PROFILES_FILE));
          const role = inferred.get(projectRootOf(file));
          const cacheKey = hashOf(['nodes', file, text, profiles ?? '', JSON.stringify(role ?? null)]);
          const cached = cache.get(cacheKey);
          if (cached) return cached as CreateNodesResult;
          const dbtProject = parsed.get(file) ?? parseDbtProject(text, file);
          const nodes = dbtProjectNodes(file, dbtProject, options, profiles, role);
          cache.set(cacheKey, nodes);
          return nodes;
        },
        userFiles,
        options,
        context,
      );
    } finally {
      cache.writeToDisk();
    }
  },
];

/** The project a dbt_project.yml describes, parsed once per text; undefined when it cannot be (its nodes then say why). */
function parsedOnce(
  file: string,
  text: string | undefined,
  cache: PluginCache<CreateNodesResult | DbtProjectFile>,
): DbtProjectFile | undefined {
  if (text === undefined) return undefined;
  const key = hashOf(['project', file, text]);
  const cached = cache.get(key);
  if (cached) return cached as DbtProjectFile;
  try {
    const project = parseDbtProject(text, file);
    cache.set(key, project);
    return project;
  } catch {
    return undefined;
  }
}

const hashOf = (parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex');

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
    dbtCommandTargetName: options?.dbtCommandTargetName ?? DEFAULT_TARGET_NAMES.dbtCommand,
    docsTargetName: options?.docsTargetName ?? DEFAULT_TARGET_NAMES.docs,
    ...(options?.dbtTargets !== undefined && { dbtTargets: options.dbtTargets }),
    ...(options?.buildablePackages !== undefined && { buildablePackages: options.buildablePackages }),
    taskLevelAffected: Number(nxVersion.split('.')[0]) >= 24 && nxJson.affected?.legacy !== true,
  };
}

function installedNxVersion(): string {
  return JSON.parse(readFileSync(require.resolve('nx/package.json'), 'utf8')).version;
}

export function dbtProjectNodes(
  file: string,
  dbtProject: DbtProjectFile,
  options: NormalizedOptions,
  profilesText?: string,
  inferred: InferredDbtProject = { nxName: dbtProject.name },
): CreateNodesResult {
  const root = dirname(file);
  const name = inferred.nxName;
  const dbtTargets =
    options.dbtTargets ??
    (profilesText !== undefined && dbtProject.profile !== undefined
      ? targetsOfProfile(profilesText, join(root, PROFILES_FILE), dbtProject.profile)
      : []);
  const withConfigurations = (target: TargetConfiguration) => ({ ...target, ...dbtTargetConfigurations(dbtTargets) });
  const buildable = inferred.notBuilt === undefined && dbtProject.profile !== undefined;
  const renamed =
    name === dbtProject.name
      ? ''
      : ` (named by its folder: a project nearer the workspace root is named ${dbtProject.name})`;
  return {
    projects: {
      [root]: {
        name,
        root,
        metadata: {
          technologies: ['dbt'],
          description: buildable
            ? `dbt project ${dbtProject.name}${renamed}`
            : `dbt package ${dbtProject.name}${renamed}: no build targets, as ${inferred.notBuilt ?? 'it has no profile'}`,
        },
        targets: buildable
          ? {
              [options.isolatedBuildTargetName]: withConfigurations(isolatedBuildTarget(name, root, options)),
              [options.cleanTargetName]: withConfigurations(cleanTarget(name, options)),
              [options.diffTargetName]: withConfigurations(diffTarget(name, options)),
              [options.promoteTargetName]: withConfigurations(promoteTarget(name, options)),
              [options.dbtCommandTargetName]: withConfigurations(dbtCommandTarget(name, options)),
              [options.docsTargetName]: withConfigurations(docsTarget(name, options)),
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

function isolatedBuildTarget(project: string, root: string, options: NormalizedOptions): TargetConfiguration {
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
      { env: buildKeyVariable(root, options.isolatedBuildTargetName) },
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

function dbtCommandTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: DBT_COMMAND_EXECUTOR,
    options: { buildTarget: options.isolatedBuildTargetName },
    cache: false,
    metadata: targetMetadata(
      `Run dbt ls, show, source freshness, docs generate or run-operation on a commit's isolated build, e.g. nx run ${project}:${options.dbtCommandTargetName} --ref=main --command=show --select=orders`,
      `${project}:${options.dbtCommandTargetName}`,
      { ref: 'main', command: 'ls' },
    ),
  };
}

function docsTarget(project: string, options: NormalizedOptions): TargetConfiguration {
  return {
    executor: DOCS_EXECUTOR,
    options: { buildTarget: options.isolatedBuildTargetName },
    cache: false,
    metadata: targetMetadata(
      `Generate a commit's dbt docs from its isolated build and serve them, e.g. nx run ${project}:${options.docsTargetName} --ref=main --port=8080`,
      `${project}:${options.docsTargetName}`,
      { ref: 'main', serve: false },
    ),
  };
}
