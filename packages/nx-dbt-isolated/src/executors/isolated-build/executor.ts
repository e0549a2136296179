import { logger } from '../logger';
import { isolatedBuild } from '../../core/build/run-build';
import type { IsolatedBuildRequest, IsolatedBuildResult } from '../../core/build/steps/context';
import { buildSummary } from '../../core/build/summary';
import { uncommittedChangesWarning } from '../../core/git/working-tree';
import { UserError } from '../../core/workspace/errors';
import { asList, varsText } from '../../plugin/build-keys';
import { checkoutAndDbt } from '../shared/checkout-options';
import { runExecutor, type ExecutorRun } from '../shared/run-executor';
import { summaryLines } from './format';
import type { IsolatedBuildExecutorOptions } from './schema';
import { promoteTargetOf } from '../shared/target-names';
import { buildKeyVariable, DEFAULT_TARGET_NAMES, KEYED_AT, RUN_ID } from '../../contract';

export default runExecutor<IsolatedBuildExecutorOptions>(
  {
    usage: 'isolated-build runs on a project: nx run <project>:isolated-build.',
    carries: ['ref', 'deferTo', 'exclude'],
    needsProjectRoot: true,
  },
  async (run) => {
    const request = buildRequest(run);
    const result = await isolatedBuild(request, { info: (line) => logger.info(line) });
    report(result, run.context.root, request.targetName);
    if (result.success) await warnOfUncommittedChanges(request, result.record.commit);
    return result.success;
  },
);

function buildRequest({
  options,
  context,
  project,
  projectRoot,
  buildThroughNx,
}: ExecutorRun<IsolatedBuildExecutorOptions>): IsolatedBuildRequest {
  const cached = context.target?.cache !== false;
  const expectedKey = process.env[buildKeyVariable(projectRoot, context.targetName ?? '')];
  if (cached && expectedKey === undefined) {
    throw new UserError(
      'no cache key for this build: register the plugin in nx.json ("plugins": ["nx-dbt-isolated"]), whose preTasksExecution hook keys Nx\'s cache on the commit, or set "cache": false on the target.',
    );
  }
  return {
    workspaceRoot: context.root,
    projectRoot,
    project,
    ref: String(options.ref ?? 'HEAD'),
    target: options.target,
    command: options.command ?? 'build',
    selection: {
      select: asList(options.select),
      exclude: asList(options.exclude),
      selector: options.selector,
      vars: varsText(options.vars),
      threads: options.threads,
      fullRefresh: options.fullRefresh,
      extraArgs: asList(options.args),
    },
    deferTo: options.deferTo === undefined ? undefined : String(options.deferTo),
    buildBase: options.buildBase ? buildThroughNx(context.targetName!, context.configurationName) : undefined,
    targetName: context.targetName ?? DEFAULT_TARGET_NAMES.isolatedBuild,
    promoteTarget: promoteTargetOf(context, project),
    isolationExceptions: options.isolationExceptions,
    sharedSchemas: asList(options.sharedSchemas),
    strictIsolation: options.strictIsolation,
    ...checkoutAndDbt(options),
    expectedKey: cached ? expectedKey : undefined,
    keyedAt: process.env[KEYED_AT] ? new Date(process.env[KEYED_AT]) : undefined,
    runId: process.env[RUN_ID],
    rebuild: process.env.NX_SKIP_NX_CACHE === 'true',
  };
}

/** A build of the working tree's commit says which uncommitted changes it left out; only words, so a failure to look says nothing. */
async function warnOfUncommittedChanges(request: IsolatedBuildRequest, commit: string): Promise<void> {
  const line = await uncommittedChangesWarning({ ...request, commit }).catch(() => undefined);
  if (line) logger.warn(`nx-dbt-isolated: ${line}`);
}

function report({ success, record, paths }: IsolatedBuildResult, workspaceRoot: string, targetName: string): void {
  const lines = summaryLines(buildSummary(workspaceRoot, paths, record), targetName);
  (success ? logger.info : logger.error)(lines.join('\n'));
}
