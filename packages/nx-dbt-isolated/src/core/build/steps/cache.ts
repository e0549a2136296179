import { markRebuilt } from '../../cache/key-marks';
import { buildKey, keyedBeforeRebuild, keyMismatchError, UNCACHEABLE, type KeyInputs } from '../../cache/key';
import { stageArtifacts } from '../../cache/staged-artifacts';
import { rememberDuckDbFile } from '../../cache/warehouse-token';
import { duckDbFile } from '../../dbt/profiles';
import type { BuildRecord } from '../records';
import { dbtTargetFor } from '../../dbt/target';
import type { BuildContext, IsolatedBuildRequest } from './context';

/**
 * Before any step that can fail: Nx replays the output of a forced run that fails as that of the
 * entry it bypassed, so a forced run must leave that entry unmatched (ADR 24).
 */
export function unmatchForcedRun(request: IsolatedBuildRequest, commit: string): void {
  if (request.rebuild && request.expectedKey !== undefined) markRebuilt(request.workspaceRoot, request.project, commit);
}

function keyRequest(
  request: IsolatedBuildRequest,
  inputs: KeyInputs,
  commit: string,
  profile: string,
  deferTo?: string,
) {
  const dbtTarget = dbtTargetFor(request.target, request.env);
  return { ...request, inputs, commit, profile, dbtTarget, deferTo, exclude: request.selection.exclude };
}

export function verifyKey(
  request: IsolatedBuildRequest,
  inputs: KeyInputs,
  commit: string,
  profile: string,
  deferTo?: string,
): void {
  const keyed = keyRequest(request, inputs, commit, profile, deferTo);
  const key = buildKey(keyed);
  const bothUncacheable = key.startsWith(UNCACHEABLE) && request.expectedKey?.startsWith(UNCACHEABLE);
  if (key === request.expectedKey || bothUncacheable) return;
  if (keyedBeforeRebuild(keyed, request.expectedKey!)) return;
  throw keyMismatchError({ ...request, commit });
}

/**
 * Ties the DuckDB file's token to the file just written, and stages the artifacts Nx caches.
 * Nx caches nothing of a forced run (`--skip-nx-cache`): its record takes the key the next plain
 * build is hashed under instead (the rebuild is in it), and that build reuses it (reuse.ts).
 */
export function keepForCache(
  { request, keyInputs, paths, profile, checkedOut, dbtProject, baseCommit }: BuildContext,
  record: BuildRecord,
) {
  const file = duckDbFile(profile.warehouse);
  if (file) rememberDuckDbFile(request.workspaceRoot, file);
  if (request.rebuild) {
    record.key = buildKey(keyRequest(request, keyInputs, checkedOut.commit, dbtProject.profile!, baseCommit));
    return;
  }
  stageArtifacts(request.workspaceRoot, paths, record, request.expectedKey!, request.runId);
}
