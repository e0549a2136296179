import { logger } from '../logger';
import { runAtCommit, type CommitCommandRequest } from '../../core/command/run-at-commit';
import { asList, varsText } from '../../plugin/build-keys';
import { checkoutAndDbt } from '../shared/checkout-options';
import { runExecutor, type ExecutorRun } from '../shared/run-executor';
import { DEFAULT_TARGET_NAMES } from '../../contract';
import { ranLine } from './format';
import type { DbtCommandExecutorOptions } from './schema';

export default runExecutor<DbtCommandExecutorOptions>(
  {
    usage: 'dbt runs on a project: nx run <project>:dbt --ref=main --command=ls.',
    carries: ['ref', 'exclude'],
    needsProjectRoot: true,
  },
  async (run) => {
    const request = commandRequest(run);
    const ran = await runAtCommit(request, { info: (line) => logger.info(line) });
    logger.info(ranLine(request, ran, run.context.root));
    return true;
  },
);

function commandRequest({
  options,
  context,
  project,
  projectRoot,
  buildThroughNx,
}: ExecutorRun<DbtCommandExecutorOptions>): CommitCommandRequest {
  const buildTarget = options.buildTarget ?? DEFAULT_TARGET_NAMES.isolatedBuild;
  return {
    workspaceRoot: context.root,
    projectRoot,
    project,
    ref: String(options.ref ?? 'HEAD'),
    target: options.target,
    command: options.command,
    selection: {
      select: asList(options.select),
      exclude: asList(options.exclude),
      selector: options.selector,
      vars: varsText(options.vars),
      threads: options.threads,
      extraArgs: asList(options.args),
    },
    inline: options.inline,
    limit: options.limit,
    macro: options.macro,
    macroArgs: options.macroArgs,
    strictIsolation: options.strictIsolation,
    ...checkoutAndDbt(options),
    targetName: buildTarget,
    build: buildThroughNx(buildTarget, context.configurationName),
  };
}
