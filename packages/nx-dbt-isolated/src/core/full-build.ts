import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { allocateBuildId } from './checkout';
import { buildPaths } from './dot-layout';
import { UserError } from './errors';
import { readBuildRecord, type BuildRecord, type RecordedBuild } from './records';

export interface FullBuildLookup {
  workspaceRoot: string;
  /** The Nx project and target, as a user would type them to build the commit. */
  project: string;
  targetName: string;
  dbtTarget: string;
  ref: string;
  commit: string;
  /** What the build is needed for, as the end of "no isolated build of … ": `to defer to`. */
  purpose: string;
  /** Builds the commit when it has no usable build; without it, building is the user's to do. */
  build?: (commit: string, dbtTarget: string) => Promise<void>;
  /** The option that would have built it, named in the message when `build` is absent. */
  buildOption?: string;
}

/**
 * The commit's succeeded, full (not slim) isolated build of the project against the dbt target,
 * with its manifest: what slim builds defer to, diffs compare and promotion publishes.
 */
export async function findFullBuild(lookup: FullBuildLookup): Promise<RecordedBuild> {
  const found = usableBuild(lookup);
  if ('build' in found) return found.build;
  if (!lookup.build) refuse(lookup, found.record);
  await lookup.build(lookup.commit, lookup.dbtTarget);
  const rebuilt = usableBuild(lookup);
  if ('build' in rebuilt) return rebuilt.build;
  refuse(lookup, rebuilt.record);
}

function usableBuild(lookup: FullBuildLookup): { build: RecordedBuild } | { record?: BuildRecord } {
  const buildId = allocateBuildId(lookup.workspaceRoot, lookup.commit);
  const paths = buildPaths(lookup.workspaceRoot, buildId, lookup.project, lookup.dbtTarget);
  const record = readBuildRecord(paths.buildRecord);
  if (record?.commit !== lookup.commit) return {};
  const manifest = join(paths.targetPath, 'manifest.json');
  if (record.status !== 'succeeded' || record.deferredTo || !existsSync(manifest)) return { record };
  return { build: { record, paths } };
}

/** How a record that is not a usable build reads in a sentence. */
const STATE_SAID: Record<BuildRecord['status'], string> = {
  succeeded: 'has no manifest.json',
  failed: 'failed',
  interrupted: 'was interrupted',
  running: 'is still running (or its process died)',
};

function refuse(lookup: FullBuildLookup, record: BuildRecord | undefined): never {
  const { project, targetName, dbtTarget, ref } = lookup;
  const build = `the isolated build of ${project} at ${ref} (${lookup.commit.slice(0, 8)}) for dbt target ${dbtTarget}`;
  const buildIt = `nx run ${project}:${targetName} --ref=${ref}`;
  if (!record) {
    const orOption = lookup.buildOption ? `, or add ${lookup.buildOption}` : '';
    throw new UserError(
      `no isolated build of ${project} at ${ref} (${lookup.commit.slice(0, 8)}) for dbt target ${dbtTarget} ${lookup.purpose}: build it first (${buildIt})${orOption}.`,
    );
  }
  if (record.deferredTo) {
    throw new UserError(
      `${build} is a slim build, which holds only what changed: build it in full (${buildIt} without --deferTo).`,
    );
  }
  throw new UserError(
    `${build} ${STATE_SAID[record.status]}, so there is nothing ${lookup.purpose}: build it again (${buildIt}).`,
  );
}
