import { join } from 'node:path';
import { depsArgs, type DbtLocations } from '../../dbt/args';
import { runDbt } from '../../dbt/process';
import { readJson, writeJsonAtomically } from '../../workspace/files';
import { locksDir } from '../../workspace/dot-layout';
import { BuildInterrupted, UserError } from '../../workspace/errors';
import { withLock } from '../../workspace/lock';
import type { BuildContext } from './context';
import { timed } from './timing';

/**
 * Runs `dbt deps` once per checkout and project: the checkout never changes, so a marker
 * naming the checkout it was made for is enough to skip it next time.
 */
export async function installPackages(
  { request, dbt, checkedOut, paths, reporter }: BuildContext,
  locations: DbtLocations,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const { workspaceRoot, project } = request;
  const { checkout } = checkedOut;
  const marker = join(paths.projectDir, 'deps.json');
  const isCurrent = () => readJson<DepsMarker>(marker)?.checkoutCreatedAt === checkout.createdAt;
  await withLock(locksDir(workspaceRoot), `deps-${checkout.buildId}-${project}`, async () => {
    if (isCurrent()) return;
    const exit = await timed(reporter, 'dbt deps', () => runDbt(dbt, depsArgs(locations), locations.projectDir, env));
    if (exit.interrupted) throw new BuildInterrupted('dbt deps');
    if (exit.code !== 0) {
      throw new UserError(
        `dbt deps failed in ${locations.projectDir} (see its output above): fix packages.yml at this commit.`,
      );
    }
    writeJsonAtomically(marker, { checkoutCreatedAt: checkout.createdAt } satisfies DepsMarker);
  });
}

interface DepsMarker {
  checkoutCreatedAt: string;
}
