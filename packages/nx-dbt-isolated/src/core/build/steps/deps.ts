import { join } from 'node:path';
import { depsArgs, type DbtLocations } from '../../dbt/args';
import type { ParsedRun, ParsedRunExit } from '../../dbt/parse-then-run';
import { declaresPackages } from '../../dbt/project';
import { readJson, writeJsonAtomically } from '../../workspace/files';
import { locksDir } from '../../workspace/dot-layout';
import { BuildInterrupted, UserError } from '../../workspace/errors';
import { withLock } from '../../workspace/lock';
import type { BuildPhase } from '../records';
import type { BuildContext } from './context';
import { phaseEnded, phaseStarting } from './timing';

export type PackagesToInstall = ParsedRun['deps'];

/** What installing a checkout's packages needs of a build, or of a command at a commit. */
export interface PackagesContext extends Pick<BuildContext, 'checkedOut' | 'paths' | 'reporter'> {
  request: Pick<BuildContext['request'], 'workspaceRoot' | 'project'>;
}

/**
 * Starts the build's dbt process (`start`) with `dbt deps` in it when the checkout's packages are
 * not installed yet: once per checkout and project, since the checkout never changes, so a marker
 * naming the checkout they were installed for is enough to skip it next time. Two builds of one
 * checkout (two targets) take turns until the packages are installed, not for the whole build.
 * Throws when dbt ended without installing them. `enterPhase` is told where the build is.
 */
export async function startWithPackages<T extends ParsedRunExit>(
  { request, checkedOut, paths, reporter }: PackagesContext,
  enterPhase: (phase: BuildPhase) => void,
  locations: DbtLocations,
  start: (deps: PackagesToInstall) => Promise<T>,
): Promise<T> {
  if (!declaresPackages(checkedOut.projectDir)) {
    enterPhase('dbt');
    return start(undefined);
  }
  enterPhase('deps');
  const marker = join(paths.projectDir, 'deps.json');
  const { checkout } = checkedOut;
  const isCurrent = () => readJson<DepsMarker>(marker)?.checkoutCreatedAt === checkout.createdAt;
  let running: Promise<T> | undefined;
  let installStarted: number | undefined;
  await withLock(
    locksDir(request.workspaceRoot),
    `deps-${checkout.buildId}-${request.project}`,
    () =>
      new Promise<void>((release) => {
        if (isCurrent()) {
          enterPhase('dbt');
          running = start(undefined);
          return release();
        }
        const installed = () => {
          writeJsonAtomically(marker, { checkoutCreatedAt: checkout.createdAt } satisfies DepsMarker);
          reporter.info(phaseEnded('dbt deps', installStarted!));
          enterPhase('dbt');
          release();
        };
        installStarted = Date.now();
        reporter.info(phaseStarting('dbt deps'));
        running = start({ args: depsArgs(locations), installed });
        running.then(
          () => release(),
          () => release(),
        );
      }),
  );
  const exit = await running!;
  if (installStarted !== undefined && !exit.installed) {
    reporter.info(phaseEnded('dbt deps', installStarted));
    if (exit.interrupted) throw new BuildInterrupted('dbt deps');
    throw new UserError(
      `dbt deps failed in ${locations.projectDir} (see its output above): fix packages.yml at this commit.`,
    );
  }
  return exit;
}

interface DepsMarker {
  checkoutCreatedAt: string;
}
