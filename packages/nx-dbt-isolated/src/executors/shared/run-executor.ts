import type { ExecutorContext } from '@nx/devkit';
import { chooseDbtColours, logger } from '../logger';
import type { BuildCommit } from '../../core/build/full-build';
import { UserError, errorMessage } from '../../core/workspace/errors';
import { buildThroughNx } from './build-through-nx';
import { askedDbtTarget } from '../../core/dbt/target';
import {
  BASE_FROM_CLI,
  DBT_TARGET_FROM_CLI,
  DEFER_TO_FROM_CLI,
  EXCLUDE_FROM_CLI,
  HEAD_FROM_CLI,
  REF_FROM_CLI,
} from '../../contract';

/** The carried options besides `target`, which every executor takes. */
export type CarriedOption = 'ref' | 'deferTo' | 'exclude' | 'base' | 'head';

export interface ExecutorSpec {
  /** How to run the executor, said when it runs without a project. */
  usage: string;
  /** The options this executor takes from the command line besides `target`. */
  carries?: CarriedOption[];
  /** Whether the executor reads the project's folder (clean does not). */
  needsProjectRoot: boolean;
}

export interface ExecutorRun<Options> {
  /**
   * The target's options with the values the pre-tasks hook carried from the command line in env
   * over them (Nx drops or retypes those): `target`, and the spec's `carries` (a ref as a string).
   */
  options: Options;
  context: ExecutorContext;
  project: string;
  /** The project's folder, relative to the workspace root; '' when the spec does not need it. */
  projectRoot: string;
  /** Builds a commit of this project through `nx run`, so that Nx's cache serves or keeps it. */
  buildThroughNx(targetName: string, configuration?: string): BuildCommit;
}

type Executor<Options> = (options: Options, context: ExecutorContext) => Promise<{ success: boolean }>;

/**
 * The start and the end every executor shares: the project it runs on, its options merged with
 * the command line once, and a UserError as one line `nx-dbt-isolated: <message>` and a failed
 * task (anything else is a bug, and is thrown with its stack).
 */
export function runExecutor<Options extends object>(
  spec: ExecutorSpec,
  work: (run: ExecutorRun<Options>) => Promise<boolean>,
): Executor<Options> {
  return async (options, context) => {
    const project = context.projectName;
    const projectRoot = project ? context.projectsConfigurations?.projects[project]?.root : undefined;
    if (!project || (spec.needsProjectRoot && projectRoot === undefined)) {
      logger.error(`nx-dbt-isolated: ${spec.usage}`);
      return { success: false };
    }
    chooseDbtColours();
    try {
      const merged = withCommandLine(options, spec.carries ?? []);
      const run = { options: merged, context, project, projectRoot: projectRoot ?? '' };
      return { success: await work({ ...run, buildThroughNx: nestedBuilds(context, project, merged) }) };
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      logger.error(`nx-dbt-isolated: ${errorMessage(error)}`);
      return { success: false };
    }
  };
}

interface CarriedOptions {
  target?: string;
  ref?: string | number;
  deferTo?: string | number;
  exclude?: string | string[];
  base?: string | number;
  head?: string | number;
}

function withCommandLine<Options extends object>(options: Options, carries: CarriedOption[]): Options {
  const given = options as Options & CarriedOptions;
  const target = askedDbtTarget(process.env[DBT_TARGET_FROM_CLI], given.target);
  const merged: Options & CarriedOptions = { ...given, target };
  if (carries.includes('ref')) merged.ref = refAsTyped(REF_FROM_CLI, '--ref', given.ref);
  if (carries.includes('deferTo')) merged.deferTo = refAsTyped(DEFER_TO_FROM_CLI, '--deferTo', given.deferTo);
  if (carries.includes('exclude')) merged.exclude = excludeFromCommandLine() ?? given.exclude;
  if (carries.includes('base')) merged.base = refAsTyped(BASE_FROM_CLI, '--base', given.base);
  if (carries.includes('head')) merged.head = refAsTyped(HEAD_FROM_CLI, '--head', given.head);
  return merged;
}

/**
 * A ref option as the command line typed it (Nx reads digits as a number, and an empty `--ref=`
 * as 0), else as the target's options give it.
 */
function refAsTyped(variable: string, flag: string, option: string | number | undefined): string | undefined {
  const typed = process.env[variable];
  if (typed === '') {
    throw new UserError(`${flag}= is empty: name a branch, tag or commit (${flag}=main), or leave the flag out.`);
  }
  return typed ?? (option === undefined ? undefined : String(option));
}

/** `--exclude` of `nx run`, which Nx keeps from the executor's options (see pre-tasks.ts). */
function excludeFromCommandLine(): string[] | undefined {
  const carried = process.env[EXCLUDE_FROM_CLI];
  return carried === undefined ? undefined : (JSON.parse(carried) as string[]);
}

/**
 * Nested builds of the task's project. They get the task's profiles folder and dbt, given or
 * configured: the task reads the build with the profile it was given, so the build must be made
 * with it (else it would be made into the schemas of another profile, and read as this one's).
 */
function nestedBuilds(
  context: ExecutorContext,
  project: string,
  { profilesDir, dbtExecutable }: { profilesDir?: string; dbtExecutable?: string },
): ExecutorRun<object>['buildThroughNx'] {
  return (targetName, configuration) =>
    (commit, dbtTarget, { rerun }) =>
      buildThroughNx({
        workspaceRoot: context.root,
        project,
        targetName,
        commit,
        dbtTarget,
        configuration,
        rerun,
        profilesDir,
        dbtExecutable,
      });
}
