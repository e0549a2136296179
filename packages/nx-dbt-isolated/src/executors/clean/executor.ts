import { logger } from '../logger';
import { executeClean, existingSchemas, planClean, type CleanRequest } from '../../core/clean/clean';
import { cleanSelector } from '../../core/clean/policy';
import { runExecutor } from '../shared/run-executor';
import { outcomeLines, planTable } from './plan-table';
import type { CleanExecutorOptions } from './schema';

export const DEFAULT_PROTECTED_REFS = ['main', 'master', 'refs/tags'];

export default runExecutor<CleanExecutorOptions>(
  { usage: 'clean runs on a project: nx run <project>:clean --keep=5.', needsProjectRoot: false },
  async ({ options, context, project }) => {
    const request = cleanRequest(options, context.root, project);
    const plan = await planClean(request);
    if (options.dryRun) {
      const existing = request.dropSchemas ? await existingSchemas(plan, request) : undefined;
      logger.info(planTable(plan, { project, dryRun: true, existing }));
      return true;
    }
    logger.info(planTable(plan, { project, dryRun: false }));
    const outcomes = await executeClean(plan, request, { info: (line) => logger.info(line) });
    const kept = plan.builds.length - outcomes.length;
    logger.info(outcomeLines(outcomes, kept, context.root).join('\n'));
    return outcomes.every((outcome) => outcome.status !== 'failed');
  },
);

function cleanRequest(options: CleanExecutorOptions, workspaceRoot: string, project: string): CleanRequest {
  return {
    workspaceRoot,
    project,
    selector: cleanSelector(options),
    dbtTarget: options.target,
    protect: options.protect ?? DEFAULT_PROTECTED_REFS,
    dropSchemas: options.schemas !== false,
    dbtExecutable: options.dbtExecutable,
    env: process.env,
    now: new Date(),
  };
}
