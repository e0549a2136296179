import { join } from 'node:path';
import { depsArgs, type DbtLocations } from '../../dbt/args';
import type { ParsedRun } from '../../dbt/parse-then-run';
import { declaresPackages } from '../../dbt/project';
import { readJson, writeJsonAtomically } from '../../workspace/files';
import { locksDir } from '../../workspace/dot-layout';
import { withLock } from '../../workspace/lock';
import type { BuildRecord } from '../records';
import type { BuildContext } from './context';
import { enterPhase } from './record';

export type PackagesToInstall = ParsedRun['deps'];

/**
 * Starts the build's dbt process (`start`) with `dbt deps` in it when the checkout's packages are
 * not installed yet: once per checkout and project, since the checkout never changes, so a marker
 * naming the checkout they were installed for is enough to skip it next time. Two builds of one
 * checkout (two targets) take turns until the packages are installed, not for the whole build.
 */
export async function startWithPackages<T>(
  { request, checkedOut, paths }: BuildContext,
  record: BuildRecord,
  locations: DbtLocations,
  start: (deps: PackagesToInstall) => Promise<T>,
): Promise<T> {
  if (!declaresPackages(checkedOut.projectDir)) {
    enterPhase(record, paths, 'dbt');
    return start(undefined);
  }
  enterPhase(record, paths, 'deps');
  const marker = join(paths.projectDir, 'deps.json');
  const { checkout } = checkedOut;
  const isCurrent = () => readJson<DepsMarker>(marker)?.checkoutCreatedAt === checkout.createdAt;
  let running: Promise<T> | undefined;
  await withLock(
    locksDir(request.workspaceRoot),
    `deps-${checkout.buildId}-${request.project}`,
    () =>
      new Promise<void>((release) => {
        if (isCurrent()) {
          enterPhase(record, paths, 'dbt');
          running = start(undefined);
          return release();
        }
        const installed = () => {
          writeJsonAtomically(marker, { checkoutCreatedAt: checkout.createdAt } satisfies DepsMarker);
          enterPhase(record, paths, 'dbt');
          release();
        };
        running = start({ args: depsArgs(locations), installed });
        running.then(
          () => release(),
          () => release(),
        );
      }),
  );
  return running!;
}

interface DepsMarker {
  checkoutCreatedAt: string;
}
