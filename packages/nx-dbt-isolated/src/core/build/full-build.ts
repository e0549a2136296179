import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { contentsOf, partialSaid } from './contents';
import { allocateBuildId } from '../git/checkout';
import { buildPaths } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
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
  build?: BuildCommit;
  /** The option that would have built it, named in the message when `build` is absent. */
  buildOption?: string;
}

/**
 * Builds a commit in full for a workflow that needs it. `rerun`: this workspace holds a partial
 * build of it in the same schemas and folder, which a restore from a cache would leave in place
 * (a build made here keeps its record), so dbt must run.
 */
export type BuildCommit = (commit: string, dbtTarget: string, order: { rerun: boolean }) => Promise<void>;

/**
 * The commit's succeeded, complete (see contents.ts) isolated build of the project against the dbt target,
 * with its manifest: what slim builds defer to, diffs compare and promotion publishes.
 */
export async function findFullBuild(lookup: FullBuildLookup): Promise<RecordedBuild> {
  const found = usableBuild(lookup);
  if ('build' in found) return found.build;
  if (!lookup.build) refuse(lookup, found.record);
  const partial = found.record !== undefined && !contentsOf(found.record).complete;
  await lookup.build(lookup.commit, lookup.dbtTarget, { rerun: partial });
  const rebuilt = usableBuild(lookup);
  if ('build' in rebuilt) return rebuilt.build;
  refuse(lookup, rebuilt.record);
}

/** The commit's full build when this workspace holds one; nothing is built. */
export function existingFullBuild(lookup: Omit<FullBuildLookup, 'purpose'>): RecordedBuild | undefined {
  const found = usableBuild(lookup);
  return 'build' in found ? found.build : undefined;
}

function usableBuild(lookup: Omit<FullBuildLookup, 'purpose'>): { build: RecordedBuild } | { record?: BuildRecord } {
  const buildId = allocateBuildId(lookup.workspaceRoot, lookup.commit);
  const paths = buildPaths(lookup.workspaceRoot, buildId, lookup.project, lookup.dbtTarget);
  const record = readBuildRecord(paths.buildRecord);
  if (record?.commit !== lookup.commit) return {};
  const manifest = join(paths.targetPath, 'manifest.json');
  if (record.status !== 'succeeded' || !contentsOf(record).complete || !existsSync(manifest)) return { record };
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
  const contents = contentsOf(record);
  if (!contents.complete) {
    throw new UserError(
      `${build} is ${partialSaid(contents)}: build it in full (${buildIt} --skip-nx-cache, without ${contents.partialBecause}; a cache hit would keep this partial build in place).`,
    );
  }
  throw new UserError(
    `${build} ${STATE_SAID[record.status]}, so there is nothing ${lookup.purpose}: build it again (${buildIt}).`,
  );
}
