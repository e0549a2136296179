import { createHash } from 'node:crypto';

/*
 * The contract between the plugin's hooks (plugin/pre-tasks.ts, post-tasks.ts), its inferred
 * targets (plugin/nodes.ts) and its executors: the executor ids, and the environment variables
 * through which the hooks hand the executors what Nx would not (every name starts with
 * CONTRACT_ENV_PREFIX, which a nested nx run must not inherit).
 */

/** Every variable of the contract starts with it. */
export const CONTRACT_ENV_PREFIX = 'NX_DBT_ISOLATED_';

export const ISOLATED_BUILD_EXECUTOR = 'nx-dbt-isolated:isolated-build';
export const CLEAN_EXECUTOR = 'nx-dbt-isolated:clean';
export const DIFF_EXECUTOR = 'nx-dbt-isolated:diff';
export const PROMOTE_EXECUTOR = 'nx-dbt-isolated:promote';
export const DBT_COMMAND_EXECUTOR = 'nx-dbt-isolated:dbt';
export const DOCS_EXECUTOR = 'nx-dbt-isolated:docs';

/** The names the plugin gives its inferred targets unless its options rename them (plugin/nodes.ts). */
export const DEFAULT_TARGET_NAMES = {
  isolatedBuild: 'isolated-build',
  clean: 'clean',
  diff: 'diff',
  promote: 'promote',
  dbtCommand: 'dbt',
  docs: 'docs',
} as const;

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

/** Carry diff's `--base` and `--head` of `nx run <project>:diff` as typed, for the same reason. */
export const BASE_FROM_CLI = 'NX_DBT_ISOLATED_BASE';
export const HEAD_FROM_CLI = 'NX_DBT_ISOLATED_HEAD';

/**
 * Carries `--exclude` of `nx run <project>:<target>` to the executor as a JSON list: Nx takes the
 * flag for itself there (projects to leave out) and the executor would never see it.
 */
export const EXCLUDE_FROM_CLI = 'NX_DBT_ISOLATED_EXCLUDE';

/**
 * Carries whether the user wants colours (`always`, `never` or `auto`) to the executors: Nx gives
 * every task FORCE_COLOR=true unless the user set it, so a task cannot tell the user's choice
 * from Nx's (colourChoiceOf).
 */
export const COLOUR_FROM_CLI = 'NX_DBT_ISOLATED_COLOR';

export type ColourChoice = 'always' | 'never' | 'auto';

/**
 * The user's colour choice in the environment Nx started with: NO_COLOR (any value) turns colours
 * off, FORCE_COLOR turns them on or, as 0 or false, off (Nx moves FORCE_COLOR=0 to
 * NX_ORIGINAL_FORCE_COLOR); otherwise colours follow whether output goes to a terminal.
 */
export function colourChoiceOf(env: NodeJS.ProcessEnv): ColourChoice {
  if (env.NO_COLOR) return 'never';
  const forced = env.FORCE_COLOR ?? env.NX_ORIGINAL_FORCE_COLOR;
  if (forced === undefined || forced === '') return 'auto';
  return forced === '0' || forced === 'false' ? 'never' : 'always';
}

/** When the hook computed the build keys (ISO time): a clean after it explains a key mismatch. */
export const KEYED_AT = 'NX_DBT_ISOLATED_KEYED_AT';

/** The id Nx gives this run's hooks: builds sign what they stage with it, for postTasksExecution to remove. */
export const RUN_ID = 'NX_DBT_ISOLATED_RUN';

/**
 * The environment variable holding the build key of one isolated-build target, by the project's
 * root folder (a project.json beside dbt_project.yml may rename the project after inference
 * named the variable). Nx hashes it through an `env` input of that target, so the cache entry
 * is the commit's.
 */
export function buildKeyVariable(projectRoot: string, target: string): string {
  const id = `${projectRoot}:${target}`;
  const readable = id.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();
  const unique = createHash('sha256').update(id).digest('hex').slice(0, 8).toUpperCase();
  return `NX_DBT_ISOLATED_KEY_${readable}_${unique}`;
}
