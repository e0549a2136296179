import { homedir } from 'node:os';
import { logger } from '../logger';
import { promoteCommit } from '../../core/promote/promote-commit';
import { runExecutor } from '../shared/run-executor';
import { DEFAULT_TARGET_NAMES } from '../../contract';
import { planLines } from './format';
import type { PromoteExecutorOptions } from './schema';

export default runExecutor<PromoteExecutorOptions>(
  {
    usage: 'promote runs on a project: nx run <project>:promote --ref=<ref>.',
    carries: ['ref'],
    needsProjectRoot: true,
  },
  async ({ options, context, project, projectRoot, buildThroughNx }) => {
    const ref = String(options.ref ?? 'HEAD');
    const buildTarget = options.buildTarget ?? DEFAULT_TARGET_NAMES.isolatedBuild;
    const result = await promoteCommit(
      {
        workspaceRoot: context.root,
        project,
        projectRoot,
        targetName: buildTarget,
        ref,
        dbtTarget: options.target,
        schema: options.schema,
        dryRun: options.dryRun === true,
        profilesDir: options.profilesDir,
        dbtExecutable: options.dbtExecutable,
        env: process.env,
        homeDir: homedir(),
        now: new Date(),
        build: buildThroughNx(buildTarget),
      },
      { info: (line) => logger.info(line) },
    );
    logger.info(planLines(result, ref, options.dryRun === true).join('\n'));
    return true;
  },
);
