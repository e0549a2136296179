import { cpSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { contentsOf } from '../build/contents';
import { buildSummary, writeBuildSummary } from '../build/summary';
import { UserError } from '../workspace/errors';
import { readdirOrEmpty, readJson, writeJsonAtomically } from '../workspace/files';
import { buildPaths, locksDir, stagingDir, type BuildPaths } from '../workspace/dot-layout';
import { LockTimeout, withLock } from '../workspace/lock';
import {
  buildLockName,
  builtHere,
  readBuildRecord,
  workspaceId,
  writeBuildRecord,
  type BuildRecord,
} from '../build/records';

/**
 * dbt's artifacts worth keeping for a build: what `--state`, docs and diffs read. Partial parse
 * and compiled SQL hold absolute paths of this clone and are left out.
 */
export const CACHED_ARTIFACTS = ['manifest.json', 'run_results.json', 'semantic_manifest.json', 'catalog.json'];
const RECORD = 'build.json';
/** Names the Nx run that staged the folder (see removeStaged). */
const STAGED_BY = 'staged-by.json';

interface StagedBy {
  runId: string;
}

/**
 * Another build's staging folder younger than this may still be on its way into Nx's cache.
 * Older ones are left-overs.
 */
const STAGING_KEPT_MS = 10 * 60_000;

/**
 * Stages this build's artifacts and record in `.dot/cache/<project>/<key>` for Nx to cache.
 * Each build keeps to its own key's folder, so a build of another commit finishing at the same
 * moment can add a folder to this build's cache entry but never change this build's files.
 */
export function stageArtifacts(
  workspaceRoot: string,
  paths: BuildPaths,
  record: BuildRecord,
  key: string,
  runId = '',
): void {
  const project = stagingDir(workspaceRoot, record.project);
  removeOldStaging(project, key);
  const staging = join(project, key);
  const temporary = `${staging}.${process.pid}.tmp`;
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(join(temporary, 'target'), { recursive: true });
  for (const file of CACHED_ARTIFACTS) {
    const source = join(paths.targetPath, file);
    if (existsSync(source)) cpSync(source, join(temporary, 'target', file));
  }
  writeBuildRecord(join(temporary, RECORD), record);
  writeJsonAtomically(join(temporary, STAGED_BY), { runId } satisfies StagedBy);
  rmSync(staging, { recursive: true, force: true });
  renameSync(temporary, staging);
}

function removeOldStaging(projectStaging: string, key: string): void {
  const now = Date.now();
  for (const entry of readdirOrEmpty(projectStaging)) {
    const folder = join(projectStaging, entry);
    const modified = statSync(folder, { throwIfNoEntry: false })?.mtimeMs ?? now;
    if (entry !== key && now - modified > STAGING_KEPT_MS) {
      rmSync(folder, { recursive: true, force: true });
    }
  }
}

/**
 * After Nx restored `.dot/cache/<project>` for a hit on `key`, copies the build staged under that
 * key to its own folder under `.dot/<short_hash>/`, where a build made here would have left it,
 * under the build's lock: a live build of the commit is left alone (its own record will say how
 * it ended), one that died is replaced by the succeeded build the hit stands for.
 */
export async function installStagedArtifacts(
  workspaceRoot: string,
  project: string,
  key: string,
  targetName: string,
): Promise<BuildPaths | undefined> {
  const staging = join(stagingDir(workspaceRoot, project), key);
  const record = readBuildRecord(join(staging, RECORD));
  if (!record) return undefined;
  const lock = buildLockName(record.commit, project, record.target);
  try {
    return await withLock(
      locksDir(workspaceRoot),
      lock,
      async () => install(workspaceRoot, staging, record, targetName),
      { timeoutMs: 0 },
    );
  } catch (error) {
    if (error instanceof LockTimeout) return undefined;
    throw error;
  }
}

function install(
  workspaceRoot: string,
  staging: string,
  record: BuildRecord,
  targetName: string,
): BuildPaths | undefined {
  const paths = buildPaths(workspaceRoot, record.buildId, record.project, record.target);
  const local = readBuildRecord(paths.buildRecord);
  if (local && keepsLocalRecord(workspaceRoot, local, record, paths)) return undefined;
  if (local) refuseOverOtherWrites(local, targetName);
  mkdirSync(paths.targetPath, { recursive: true });
  cpSync(join(staging, 'target'), paths.targetPath, { recursive: true });
  const restored: BuildRecord = { ...record, restoredFromCacheAt: new Date().toISOString() };
  if (local?.claimedAt !== undefined && local.startedAt === record.startedAt) restored.claimedAt = local.claimedAt;
  // This workspace made the schemas: the restored record must still say so, for clean.
  if (local && builtHere(local, workspaceId(workspaceRoot))) restored.builtBy = workspaceId(workspaceRoot);
  writeBuildRecord(paths.buildRecord, restored);
  writeBuildSummary(paths, buildSummary(workspaceRoot, paths, restored));
  return paths;
}

/**
 * A succeeded build this workspace made keeps its own record and artifacts: the record says who
 * created the schemas, which clean relies on. So does a build restored later than the staged one.
 * A record that did not succeed (failed, interrupted, or left running by a dead process), or whose
 * artifacts are gone (`clean --schemas=false`), gives way to the succeeded build the hit restores:
 * a hit reports success, and so must the record.
 */
function keepsLocalRecord(workspaceRoot: string, local: BuildRecord, staged: BuildRecord, paths: BuildPaths): boolean {
  if (local.status !== 'succeeded') return false;
  if (local.filesRemovedAt !== undefined || !existsSync(join(paths.targetPath, 'manifest.json'))) return false;
  return builtHere(local, workspaceId(workspaceRoot)) || local.startedAt > staged.startedAt;
}

/**
 * A build that did not succeed wrote the commit's own relations into the schema, unless it was
 * slim (views over its base) or wrote other data (vars, args such as --empty): the hit's record
 * would then claim a build the schema does not hold.
 */
function refuseOverOtherWrites(local: BuildRecord, targetName: string): void {
  if (local.status === 'succeeded') return;
  const contents = contentsOf(local);
  const other = local.deferredTo ? ['--deferTo'] : contents.variedBy.filter((flag) => flag !== 'unrecorded');
  if (other.length === 0) return;
  const at = local.commit.slice(0, 12);
  throw new UserError(
    `Nx restored the build of ${local.project} at ${at} from its cache, but a build here with ${other.join(' and ')} ${local.status === 'running' ? 'died' : local.status} after writing into its schema, which no longer holds what the cached build made: build it again with nx run ${local.project}:${targetName} --ref=${at} --skip-nx-cache.`,
  );
}

/**
 * Removes the folder of `key` once Nx has cached the run (postTasksExecution runs after Nx's
 * cache writes), so that the next build's cache entry holds that build alone: when the run
 * `runId` staged it, or Nx restored it for a hit. A folder another run staged since (a build of
 * the same key in another process, not yet cached) stays.
 */
export function removeStaged(
  workspaceRoot: string,
  project: string,
  key: string,
  { runId, restored }: { runId: string; restored: boolean },
): void {
  const staging = join(stagingDir(workspaceRoot, project), key);
  const stagedBy = readJson<StagedBy>(join(staging, STAGED_BY))?.runId;
  if (restored || stagedBy === runId) rmSync(staging, { recursive: true, force: true });
}
