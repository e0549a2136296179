import { homedir } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { logger, type ExecutorContext } from '@nx/devkit';
import { diffCommits } from '../../core/diff/diff-commits';
import { renderMarkdown, renderTable } from '../../core/diff/report';
import { UserError, errorMessage } from '../../core/workspace/errors';
import { askedDbtTarget } from '../../core/dbt/target';
import { buildThroughNx } from '../shared/build-through-nx';
import type { DiffExecutorOptions } from './schema';
import { DBT_TARGET_FROM_CLI, DEFAULT_TARGET_NAMES } from '../../contract';

export default async function diffExecutor(
  options: DiffExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  const project = context.projectName;
  const projectRoot = project ? context.projectsConfigurations?.projects[project]?.root : undefined;
  if (!project || projectRoot === undefined) {
    logger.error('nx-dbt-isolated: diff runs on a project: nx run <project>:diff --base=main --head=HEAD.');
    return { success: false };
  }
  const buildTarget = options.buildTarget ?? DEFAULT_TARGET_NAMES.isolatedBuild;
  const format = options.format ?? 'table';
  // With JSON on stdout, everything else the task says goes to stderr (Nx still frames the output).
  const say =
    format === 'json' ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => logger.info(line);
  try {
    const { report, files } = await diffCommits(
      {
        workspaceRoot: context.root,
        project,
        projectRoot,
        targetName: buildTarget,
        // Like nx affected, NX_BASE and NX_HEAD stand in for --base and --head (which
        // nx affected keeps for itself instead of passing them to the task).
        base: String(options.base ?? (process.env.NX_BASE || 'main')),
        head: String(options.head ?? (process.env.NX_HEAD || 'HEAD')),
        dbtTarget: askedDbtTarget(process.env[DBT_TARGET_FROM_CLI], options.target),
        select: options.select === undefined ? [] : [options.select].flat(),
        profilesDir: options.profilesDir,
        dbtExecutable: options.dbtExecutable,
        env: process.env,
        homeDir: homedir(),
        build: (commit, dbtTarget, { rerun }) =>
          buildThroughNx({ workspaceRoot: context.root, project, targetName: buildTarget, commit, dbtTarget, rerun }),
      },
      { info: say },
    );
    const rendered = format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : render[format](report);
    if (format === 'json') process.stdout.write(rendered);
    else logger.info(rendered);
    if (options.outputFile) writeOutputFile(join(context.root, options.outputFile), rendered);
    say(`Reports: ${relative(context.root, files.markdown)} and ${relative(context.root, files.json)}`);
    return { success: true };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    logger.error(`nx-dbt-isolated: ${errorMessage(error)}`);
    return { success: false };
  }
}

const render = { table: renderTable, markdown: renderMarkdown };

function writeOutputFile(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
