import { logger } from '../logger';
import { executeClean, existingSchemas, planClean, type CleanRequest } from '../../core/clean/clean';
import { cleanSelector } from '../../core/clean/policy';
import type { ExecutorContext } from '@nx/devkit';
import { runExecutor } from '../shared/run-executor';
import { promoteTargetOf } from '../shared/target-names';
import { outcomeLines, planTable } from './plan-table';
import type { CleanExecutorOptions } from './schema';

export const DEFAULT_PROTECTED_REFS = ['main', 'master', 'refs/tags'];

export default runExecutor<CleanExecutorOptions>(
  { usage: 'clean runs on a project: nx run <project>:clean --keep=5.', needsProjectRoot: false },
  async ({ options, context, project }) => {
    const reporter = { info: (line: string) => logger.info(line) };
    const request = cleanRequest(options, context, project);
    const plan = await planClean(request);
    if (options.dryRun) {
      const existing = request.dropSchemas ? await existingSchemas(plan, request, reporter) : undefined;
      logger.info(planTable(plan, { project, dryRun: true, existing }));
      return true;
    }
    logger.info(planTable(plan, { project, dryRun: false }));
    const outcomes = await executeClean(plan, request, reporter);
    const kept = plan.builds.length - outcomes.length;
    logger.info(outcomeLines(outcomes, kept, context.root).join('\n'));
    return outcomes.every((outcome) => outcome.status !== 'failed');
  },
);

function cleanRequest(options: CleanExecutorOptions, context: ExecutorContext, project: string): CleanRequest {
  return {
    workspaceRoot: context.root,
    project,
    promoteTarget: promoteTargetOf(context, project),
    selector: cleanSelector(options),
    dbtTarget: options.target,
    protect: options.protect ?? DEFAULT_PROTECTED_REFS,
    dropSchemas: options.schemas !== false,
    dbtExecutable: options.dbtExecutable,
    env: process.env,
    now: new Date(),
  };
}
