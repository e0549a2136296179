import { logger, type ExecutorContext } from '@nx/devkit';
import { executeClean, existingSchemas, planClean, type CleanRequest } from '../../core/clean/clean';
import { cleanSelector } from '../../core/clean/policy';
import { UserError, errorMessage } from '../../core/workspace/errors';
import { askedDbtTarget } from '../../core/dbt/target';
import { outcomeLines, planTable } from './plan-table';
import type { CleanExecutorOptions } from './schema';
import { promoteTargetOf } from '../shared/target-names';
import { DBT_TARGET_FROM_CLI } from '../../contract';

export const DEFAULT_PROTECTED_REFS = ['main', 'master', 'refs/tags'];

export default async function cleanExecutor(
  options: CleanExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  const project = context.projectName;
  if (!project) {
    logger.error('nx-dbt-isolated: clean runs on a project: nx run <project>:clean --keep=5.');
    return { success: false };
  }
  const reporter = { info: (line: string) => logger.info(line) };
  try {
    const request = cleanRequest(options, context, project);
    const plan = await planClean(request);
    if (options.dryRun) {
      const existing = request.dropSchemas ? await existingSchemas(plan, request, reporter) : undefined;
      logger.info(planTable(plan, { project, dryRun: true, existing }));
      return { success: true };
    }
    logger.info(planTable(plan, { project, dryRun: false }));
    const outcomes = await executeClean(plan, request, reporter);
    const kept = plan.builds.length - outcomes.length;
    logger.info(outcomeLines(outcomes, kept, context.root).join('\n'));
    return { success: outcomes.every((outcome) => outcome.status !== 'failed') };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    logger.error(`nx-dbt-isolated: ${errorMessage(error)}`);
    return { success: false };
  }
}

function cleanRequest(options: CleanExecutorOptions, context: ExecutorContext, project: string): CleanRequest {
  return {
    workspaceRoot: context.root,
    project,
    promoteTarget: promoteTargetOf(context, project),
    selector: cleanSelector(options),
    dbtTarget: askedDbtTarget(process.env[DBT_TARGET_FROM_CLI], options.target),
    protect: options.protect ?? DEFAULT_PROTECTED_REFS,
    dropSchemas: options.schemas !== false,
    dbtExecutable: options.dbtExecutable,
    env: process.env,
    now: new Date(),
  };
}
