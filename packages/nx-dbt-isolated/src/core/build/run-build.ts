import { refusePluginOwnedArgs } from '../dbt/args';
import { findDbt, requirePythonDbt } from '../dbt/executable';
import { stoppingGracefully } from '../workspace/stop';
import { readProfilesFile } from '../dbt/profiles';
import type { KeyInputs } from '../cache/key';
import { buildPaths, locksDir } from '../workspace/dot-layout';
import { ifStopped, withLock } from '../workspace/lock';
import { buildLockName, writeBuildRecord } from './records';
import { keepForCache, unmatchForcedRun, verifyKey } from './steps/cache';
import { checkoutProject, type ProjectCheckout } from './steps/checkout';
import type { BuildContext, IsolatedBuildRequest, IsolatedBuildResult } from './steps/context';
import type { Reporter } from '../workspace/reporter';
import { guardedDbtRun } from './steps/dbt-run';
import { deferralCommit } from './steps/deferral';
import { dbtRunEnvironment } from './steps/environment';
import { isolatedProfileFor, projectAtCommit, writeIsolatedProfile } from './steps/profile';
import { planPromotedViews } from './steps/promoted-views';
import { endRecord, failRecord, startRecord } from './steps/record';
import { reuseOrRun } from './steps/reuse-or-run';
import { buildToRetry, retryingRecord } from './steps/retry';

/** One isolated build: ref → checkout → profile → deps → dbt, with a record of each step. */
export async function isolatedBuild(request: IsolatedBuildRequest, reporter: Reporter): Promise<IsolatedBuildResult> {
  refusePluginOwnedArgs(request.selection.extraArgs);
  const dbt = findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH);
  requirePythonDbt(dbt);
  return stoppingGracefully(async () => {
    // A forced run that fails from here on (waiting for the checkout included) must not leave
    // Nx's entry of the build it bypassed to replay its failure (ADR 24).
    const checkedOut = await checkoutProject(request, reporter, (commit) => unmatchForcedRun(request, commit));
    try {
      return await buildInCheckout(request, reporter, dbt, checkedOut);
    } finally {
      await checkedOut.checkout.release();
    }
  });
}

async function buildInCheckout(
  request: IsolatedBuildRequest,
  reporter: Reporter,
  dbt: string,
  checkedOut: ProjectCheckout,
): Promise<IsolatedBuildResult> {
  const { commit, checkout, workingProjectDir } = checkedOut;
  const dbtProject = projectAtCommit(request, checkedOut);
  const baseCommit = await deferralCommit(request, checkedOut);
  // Read once: the key, the generated profile and dbt's failure messages all use them.
  const keyInputs: KeyInputs = { profiles: readProfilesFile(request), dbt };
  if (request.expectedKey !== undefined) verifyKey(request, keyInputs, commit, dbtProject.profile, baseCommit);
  const profile = isolatedProfileFor(
    request,
    keyInputs.profiles,
    dbtProject.profile,
    checkout.buildId,
    workingProjectDir,
  );
  const paths = buildPaths(request.workspaceRoot, checkout.buildId, request.project, profile.target);
  const context: BuildContext = {
    request,
    reporter,
    dbt,
    keyInputs,
    checkedOut,
    dbtProject,
    profile,
    paths,
    baseCommit,
  };
  // Two builds of one commit, project and target would share this folder and these schemas.
  return withLock(
    locksDir(request.workspaceRoot),
    buildLockName(commit, request.project, profile.target),
    () => reuseOrRun(context, runBuild),
    {
      onWait: (holder) =>
        reporter.info(`waiting for another build of ${request.project} at this commit to finish${ifStopped(holder)}`),
    },
  );
}

async function runBuild(context: BuildContext): Promise<IsolatedBuildResult> {
  const { request, paths } = context;
  const retried = request.command === 'retry' ? buildToRetry(context) : undefined;
  writeIsolatedProfile(paths, context.profile);
  const record = startRecord(context);
  if (retried) retryingRecord(record, retried);
  const views = await planPromotedViews(context, record);
  writeBuildRecord(paths.buildRecord, record);
  try {
    await guardedDbtRun(context, record, dbtRunEnvironment(context), views);
    if (record.status === 'succeeded' && request.expectedKey !== undefined) keepForCache(context, record);
  } catch (error) {
    failRecord(record, error);
    throw error;
  } finally {
    endRecord(context, record);
  }
  return { success: record.status === 'succeeded', record, paths };
}
