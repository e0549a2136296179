import { homedir } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { logger } from '../logger';
import { diffCommits } from '../../core/diff/diff-commits';
import { runExecutor } from '../shared/run-executor';
import { DEFAULT_TARGET_NAMES } from '../../contract';
import { renderedReport, reportsLine } from './format';
import type { DiffExecutorOptions } from './schema';

export default runExecutor<DiffExecutorOptions>(
  {
    usage: 'diff runs on a project: nx run <project>:diff --base=main --head=HEAD.',
    carries: ['base', 'head'],
    needsProjectRoot: true,
  },
  async ({ options, context, project, projectRoot, buildThroughNx }) => {
    const buildTarget = options.buildTarget ?? DEFAULT_TARGET_NAMES.isolatedBuild;
    const format = options.format ?? 'table';
    // With JSON on stdout, everything else the task says goes to stderr (Nx still frames the output).
    const say =
      format === 'json' ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => logger.info(line);
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
        dbtTarget: options.target,
        select: options.select === undefined ? [] : [options.select].flat(),
        profilesDir: options.profilesDir,
        dbtExecutable: options.dbtExecutable,
        env: process.env,
        homeDir: homedir(),
        build: buildThroughNx(buildTarget),
      },
      { info: say },
    );
    const rendered = renderedReport(report, format);
    if (format === 'json') process.stdout.write(rendered);
    else logger.info(rendered);
    if (options.outputFile) writeOutputFile(resolve(context.root, options.outputFile), rendered);
    say(reportsLine(files, context.root));
    return true;
  },
);

function writeOutputFile(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
