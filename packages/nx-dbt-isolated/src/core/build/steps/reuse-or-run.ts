import { reusableFullBuild } from '../reuse';
import { fullBuildCommand, promoteCommand, type BuildContext, type IsolatedBuildResult } from './context';
import { deferralBase } from './deferral';
import { keepForCache } from './cache';

/**
 * Another name of a commit already built in full here under this key costs no dbt run (reuse.ts);
 * else `run` builds it, against its deferral base when it is a slim build.
 */
export async function reuseOrRun(
  context: BuildContext,
  run: (context: BuildContext) => Promise<IsolatedBuildResult>,
): Promise<IsolatedBuildResult> {
  const { request, reporter, dbt, paths, profile } = context;
  const fullCommand = fullBuildCommand(request);
  const reused = await reusableFullBuild(
    { ...request, dbt, warehouse: profile.warehouse, fullCommand, promoteCommand: promoteCommand(request) },
    paths,
    reporter,
  );
  if (!reused) {
    const base =
      context.baseCommit === undefined ? undefined : await deferralBase(request, context.baseCommit, profile.target);
    return run({ ...context, base });
  }
  reporter.info(
    request.deferTo === undefined
      ? `• restored the full build of ${reused.commit.slice(0, 12)} made at ${reused.startedAt} (as ${reused.ref}) under the same key: no dbt run`
      : `• this commit's full build, made at ${reused.startedAt}, holds everything a slim build of it would: served it, no dbt run`,
  );
  if (request.expectedKey !== undefined) keepForCache(context, reused);
  return { success: true, record: reused, paths };
}
