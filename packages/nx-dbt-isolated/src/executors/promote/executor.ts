import { homedir } from 'node:os';
import { logger, type ExecutorContext } from '@nx/devkit';
import { UserError, errorMessage } from '../../core/workspace/errors';
import { askedDbtTarget } from '../../core/dbt/target';
import { promoteCommit, type PromoteResult } from '../../core/promote/promote-commit';
import { buildThroughNx } from '../shared/build-through-nx';
import type { PromoteExecutorOptions } from './schema';
import { DBT_TARGET_FROM_CLI, DEFAULT_TARGET_NAMES, REF_FROM_CLI } from '../../contract';

export default async function promoteExecutor(
  options: PromoteExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  const project = context.projectName;
  const projectRoot = project ? context.projectsConfigurations?.projects[project]?.root : undefined;
  if (!project || projectRoot === undefined) {
    logger.error('nx-dbt-isolated: promote runs on a project: nx run <project>:promote --ref=<ref>.');
    return { success: false };
  }
  const buildTarget = options.buildTarget ?? DEFAULT_TARGET_NAMES.isolatedBuild;
  try {
    const ref = process.env[REF_FROM_CLI] || String(options.ref ?? 'HEAD');
    const result = await promoteCommit(
      {
        workspaceRoot: context.root,
        project,
        projectRoot,
        targetName: buildTarget,
        ref,
        dbtTarget: askedDbtTarget(process.env[DBT_TARGET_FROM_CLI], options.target),
        schema: options.schema,
        dryRun: options.dryRun === true,
        profilesDir: options.profilesDir,
        dbtExecutable: options.dbtExecutable,
        env: process.env,
        homeDir: homedir(),
        now: new Date(),
        build: (commit, dbtTarget, { rerun }) =>
          buildThroughNx({ workspaceRoot: context.root, project, targetName: buildTarget, commit, dbtTarget, rerun }),
      },
      { info: (line) => logger.info(line) },
    );
    logger.info(planLines(result, ref, options.dryRun === true).join('\n'));
    return { success: true };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    logger.error(`nx-dbt-isolated: ${errorMessage(error)}`);
    return { success: false };
  }
}

export function planLines({ build, promotedAs, plan, skipped }: PromoteResult, ref: string, dryRun: boolean): string[] {
  const { record } = build;
  const heading = `${dryRun ? 'Plan to promote' : 'Promoted'} ${record.project} at ${ref} (${record.commit.slice(0, 12)}, dbt target ${record.target}) to ${promotedAs}:`;
  const rows = plan.actions.map((action) => {
    const view = `${action.view.schema}.${action.view.name}`;
    const source = 'sourceSchema' in action.view ? `  <- ${action.view.sourceSchema}.${action.view.name}` : '';
    return `  ${action.kind.padEnd(8)}${view}${source}`;
  });
  const skippedRows = skipped.map((node) => `  skipped ${node}`);
  const footer = dryRun
    ? 'Dry run: nothing changed. Run again without --dryRun to switch every view in one transaction.'
    : `${switched(plan)} in one transaction; the build is marked promoted, so clean keeps it.`;
  return [heading, ...rows, ...skippedRows, footer];
}

function switched({ actions }: PromoteResult['plan']): string {
  const dropped = actions.filter((action) => action.kind === 'drop').length;
  const made = `${actions.length - dropped} views made`;
  return dropped > 0 ? `${made}, ${dropped} dropped` : made;
}
