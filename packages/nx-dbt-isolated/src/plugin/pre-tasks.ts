import { readCachedProjectGraph, type PreTasksExecution } from '@nx/devkit';
import { isolatedBuildTasks, setBuildKeys } from './build-keys';
import { requestedTasks } from './command-line';

/**
 * Carries the dbt target from `nx run <project>:<target> --target=<dbt target>` to the executor.
 * `nx run` claims `--target` for itself and drops it when the positional `project:target` form
 * is used, so the executor would never see the flag the dbt user types.
 */
export const DBT_TARGET_FROM_CLI = 'NX_DBT_ISOLATED_TARGET';

/**
 * Carries `--ref` as typed to the executor: Nx turns a value made of digits only (a short sha such
 * as 1234567) into a number.
 */
export const REF_FROM_CLI = 'NX_DBT_ISOLATED_REF';

/** Carries `--deferTo` as typed to the executor, for the same reason as REF_FROM_CLI. */
export const DEFER_TO_FROM_CLI = 'NX_DBT_ISOLATED_DEFER_TO';

/**
 * Carries `--exclude` of `nx run <project>:<target>` to the executor as a JSON list: Nx takes the
 * flag for itself there (projects to leave out) and the executor would never see it.
 */
export const EXCLUDE_FROM_CLI = 'NX_DBT_ISOLATED_EXCLUDE';

/** When the hook computed the build keys (ISO time): a clean after it explains a key mismatch. */
export const KEYED_AT = 'NX_DBT_ISOLATED_KEYED_AT';

/** The id Nx gives this run's hooks: builds sign what they stage with it, for postTasksExecution to remove. */
export const RUN_ID = 'NX_DBT_ISOLATED_RUN';

/**
 * Runs before Nx hashes tasks: resolves `--ref` to a commit and sets each isolated build's key,
 * so that Nx's cache entry is the commit's, not the branch name's.
 */
export const preTasksExecution: PreTasksExecution = async (_options, context) => {
  const requested = requestedTasks(context.argv);
  if (requested.dbtTarget !== undefined) process.env[DBT_TARGET_FROM_CLI] = requested.dbtTarget;
  if (requested.ref !== undefined) process.env[REF_FROM_CLI] = requested.ref;
  if (requested.deferTo !== undefined) process.env[DEFER_TO_FROM_CLI] = requested.deferTo;
  if (requested.exclude !== undefined) process.env[EXCLUDE_FROM_CLI] = JSON.stringify(requested.exclude);
  process.env[KEYED_AT] = new Date().toISOString();
  process.env[RUN_ID] = context.id;
  const tasks = isolatedBuildTasks(cachedGraph(), requested.targets, requested.configuration);
  await setBuildKeys(context.workspaceRoot, tasks, requested, process.env);
};

/** Nx writes the graph before it runs this hook; without it, executors report the missing key. */
function cachedGraph() {
  try {
    return readCachedProjectGraph();
  } catch {
    return { nodes: {}, dependencies: {} };
  }
}
