import { join } from 'node:path';
import { schemasInManifest, summarizeRunResults, type WriteOptions } from '../../dbt/artifacts';
import type { DbtExit } from '../../dbt/process';
import type { IsolatedProfile } from '../../dbt/profiles';
import type { DbtProjectFile } from '../../dbt/project';
import type { Checkout } from '../../git/checkout';
import type { BuildPaths } from '../../workspace/dot-layout';
import { BuildInterrupted, errorMessage } from '../../workspace/errors';
import { keepPromotion } from '../../promote/rebuild';
import { fingerprintsOf, type FingerprintManifest } from '../../fingerprints/fingerprints';
import { readJson } from '../../workspace/files';
import { buildContents } from '../contents';
import {
  carriedReads,
  readBuildRecord,
  workspaceId,
  writeBuildRecord,
  type BuildPhase,
  type BuildRecord,
} from '../records';
import { recordedSelection } from '../reuse';
import { buildSummary, writeBuildSummary } from '../summary';
import type { DeferralBase } from '../slim';
import type { BuildContext, IsolatedBuildRequest } from './context';
import type { Reporter } from '../../workspace/reporter';

/** The running build's record, with what it carries over from the one it replaces; not written yet. */
export function startRecord(context: BuildContext): BuildRecord {
  const { request, checkedOut, dbtProject, profile, paths, base, reporter } = context;
  const record = newRecord(request, checkedOut.checkout, dbtProject, profile, base);
  const readsFrom = carriedReads(readBuildRecord(paths.buildRecord));
  if (readsFrom) record.readsFrom = readsFrom;
  noteDeadPredecessor(record, paths, reporter);
  keepPromotion(record, paths.buildRecord);
  return record;
}

/**
 * A record still `running` when this build holds the build's lock belongs to a process that
 * died (killed, crashed): the new record says so, and the build starts over.
 */
function noteDeadPredecessor(record: BuildRecord, paths: BuildPaths, reporter: Reporter): void {
  const previous = readBuildRecord(paths.buildRecord);
  if (previous?.status !== 'running') return;
  record.recoveredFrom = { startedAt: previous.startedAt, phase: previous.phase ?? 'start' };
  reporter.info(
    `• the build started at ${previous.startedAt} died during ${record.recoveredFrom.phase}; building again`,
  );
}

export function enterPhase(record: BuildRecord, paths: BuildPaths, phase: BuildPhase): void {
  record.phase = phase;
  writeBuildRecord(paths.buildRecord, record);
}

function newRecord(
  request: IsolatedBuildRequest,
  checkout: Checkout,
  dbtProject: DbtProjectFile,
  profile: IsolatedProfile,
  base: DeferralBase | undefined,
): BuildRecord {
  return {
    version: 1,
    commit: checkout.commit,
    buildId: checkout.buildId,
    ref: request.ref,
    project: request.project,
    dbtProject: dbtProject.name,
    profile: dbtProject.profile,
    target: profile.target,
    command: request.command,
    selection: recordedSelection(request.selection),
    contents: buildContents(request.command, request.selection, base !== undefined),
    ...(base && { deferredTo: { commit: base.commit, ref: base.ref, schema: base.schema } }),
    warehouse: profile.warehouse,
    schema: profile.schema,
    schemas: [],
    status: 'running',
    key: request.expectedKey,
    builtBy: workspaceId(request.workspaceRoot),
    checkout: checkout.state,
    checkoutFolders: checkout.folders,
    startedAt: new Date().toISOString(),
  };
}

export function finishRecord(record: BuildRecord, paths: BuildPaths, exit: DbtExit, writes: WriteOptions): void {
  record.results = summarizeRunResults(join(paths.targetPath, 'run_results.json'));
  record.schemas = schemasInManifest(join(paths.targetPath, 'manifest.json'), writes);
  if (exit.interrupted) {
    record.status = 'interrupted';
    record.error = new BuildInterrupted(`dbt ${record.command}`).message;
  } else if (exit.code === 0) {
    record.status = 'succeeded';
    // Every relation is now this build's own: what earlier slim builds read is read no more.
    if (record.contents?.complete) {
      delete record.readsFrom;
      const manifest = readJson<FingerprintManifest>(join(paths.targetPath, 'manifest.json'));
      if (manifest) record.fingerprints = fingerprintsOf(manifest, record.schema);
    }
  } else {
    record.status = 'failed';
    record.error = dbtExitedWith(record.command, exit.code ?? exit.signal);
  }
}

function dbtExitedWith(command: string, code: number | string | null): string {
  return `dbt ${command} exited with ${code}`;
}

/**
 * dbt ran the command to its end and some nodes failed (exit code 1): its run_results.json names
 * every node, with what failed and what was skipped for it. Any other failure (a runtime error,
 * a stop) leaves nodes that never started out of it.
 */
export function failedOnNodes(record: BuildRecord): boolean {
  return record.status === 'failed' && record.error === dbtExitedWith(record.command, 1);
}

/** A build an error stopped: interrupted when a signal stopped it, else failed, in the error's words. */
export function failRecord(record: BuildRecord, error: unknown): void {
  record.status = error instanceof BuildInterrupted ? 'interrupted' : 'failed';
  record.error = errorMessage(error);
}

/** The record and summary every build leaves, however it ended. */
export function endRecord({ request, paths }: BuildContext, record: BuildRecord): void {
  record.endedAt = new Date().toISOString();
  delete record.phase;
  writeBuildRecord(paths.buildRecord, record);
  writeBuildSummary(paths, buildSummary(request.workspaceRoot, paths, record));
}
