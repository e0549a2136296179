import { homedir } from 'node:os';
import { logger, type ExecutorContext } from '@nx/devkit';
import { isolatedBuild, type IsolatedBuildRequest, type IsolatedBuildResult } from '../../core/build/run-build';
import { buildSummary, summaryLines } from '../../core/build/summary';
import { UserError, errorMessage } from '../../core/workspace/errors';
import { askedDbtTarget } from '../../core/dbt/target';
import { asList } from '../../plugin/build-keys';
import { buildThroughNx } from '../shared/build-through-nx';
import { promoteTargetOf } from '../shared/target-names';
import type { IsolatedBuildExecutorOptions } from './schema';
import {
  buildKeyVariable,
  DBT_TARGET_FROM_CLI,
  DEFAULT_TARGET_NAMES,
  DEFER_TO_FROM_CLI,
  EXCLUDE_FROM_CLI,
  KEYED_AT,
  REF_FROM_CLI,
  RUN_ID,
} from '../../contract';

export default async function isolatedBuildExecutor(
  options: IsolatedBuildExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  const projectName = context.projectName;
  const project = projectName ? context.projectsConfigurations?.projects[projectName] : undefined;
  if (!projectName || !project) {
    logger.error('nx-dbt-isolated: isolated-build runs on a project: nx run <project>:isolated-build.');
    return { success: false };
  }
  try {
    const request = buildRequest(options, context, projectName, project.root);
    const result = await isolatedBuild(request, { info: (line) => logger.info(line) });
    report(result, context.root);
    return { success: result.success };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    logger.error(`nx-dbt-isolated: ${errorMessage(error)}`);
    return { success: false };
  }
}

function buildRequest(
  options: IsolatedBuildExecutorOptions,
  context: ExecutorContext,
  project: string,
  projectRoot: string,
): IsolatedBuildRequest {
  const cached = context.target?.cache !== false;
  const expectedKey = process.env[buildKeyVariable(project, context.targetName ?? '')];
  if (cached && expectedKey === undefined) {
    throw new UserError(
      'no cache key for this build: register the plugin in nx.json ("plugins": ["nx-dbt-isolated"]), whose preTasksExecution hook keys Nx\'s cache on the commit, or set "cache": false on the target.',
    );
  }
  return {
    workspaceRoot: context.root,
    projectRoot,
    project,
    ref: refAsTyped(REF_FROM_CLI, '--ref', options.ref) ?? 'HEAD',
    target: askedDbtTarget(process.env[DBT_TARGET_FROM_CLI], options.target),
    command: options.command ?? 'build',
    selection: {
      select: asList(options.select),
      exclude: excludeFromCommandLine() ?? asList(options.exclude),
      selector: options.selector,
      vars: typeof options.vars === 'object' ? JSON.stringify(options.vars) : options.vars,
      threads: options.threads,
      fullRefresh: options.fullRefresh,
      extraArgs: asList(options.args),
    },
    deferTo: refAsTyped(DEFER_TO_FROM_CLI, '--deferTo', options.deferTo),
    buildBase: options.buildBase
      ? (commit, dbtTarget, { rerun }) =>
          buildThroughNx({
            workspaceRoot: context.root,
            project,
            targetName: context.targetName!,
            commit,
            dbtTarget,
            configuration: context.configurationName,
            rerun,
          })
      : undefined,
    targetName: context.targetName ?? DEFAULT_TARGET_NAMES.isolatedBuild,
    promoteTarget: promoteTargetOf(context, project),
    isolationExceptions: options.isolationExceptions,
    strictIsolation: options.strictIsolation,
    sparseCheckout: options.sparseCheckout,
    checkoutFolders: options.checkoutFolders,
    profilesDir: options.profilesDir,
    dbtExecutable: options.dbtExecutable,
    env: process.env,
    homeDir: homedir(),
    expectedKey: cached ? expectedKey : undefined,
    keyedAt: process.env[KEYED_AT] ? new Date(process.env[KEYED_AT]) : undefined,
    runId: process.env[RUN_ID],
    rebuild: process.env.NX_SKIP_NX_CACHE === 'true',
  };
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

function report({ success, record, paths }: IsolatedBuildResult, workspaceRoot: string): void {
  const lines = summaryLines(buildSummary(workspaceRoot, paths, record));
  (success ? logger.info : logger.error)(lines.join('\n'));
}
