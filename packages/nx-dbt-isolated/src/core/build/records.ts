import { randomUUID } from 'node:crypto';
import { linkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readdirOrEmpty, readJson, writeJsonAtomically } from '../workspace/files';
import { buildPaths, dotRoot, ensureDotFolder, type BuildPaths } from '../workspace/dot-layout';
import type { WarehouseIdentity } from '../dbt/profiles';
import type { DbtSelection } from '../dbt/args';
import type { RunResultsSummary } from '../dbt/artifacts';
import type { BuildContents } from './contents';
import type { CheckoutState } from '../git/checkout';
import type { CheckoutFolders } from '../git/sparse';
import type { Fingerprints } from '../fingerprints/fingerprints';

export type BuildStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';
/** What a running build is doing; a record left `running` by a dead process keeps it. */
export type BuildPhase = 'start' | 'deps' | 'dbt';

/** What a build was asked to contain: a full build has none of these (see contents.ts). */
export type RecordedSelection = Pick<DbtSelection, 'select' | 'exclude' | 'selector' | 'vars' | 'extraArgs'>;

/** Another commit's build that a build reads relations of. */
export interface BaseBuild {
  commit: string;
  ref: string;
  schema: string;
}

/** One record per build of a project at a commit against a dbt target: what clean acts on. */
export interface BuildRecord {
  version: 1;
  commit: string;
  buildId: string;
  ref: string;
  project: string;
  dbtProject: string;
  /** The profile of dbt_project.yml, as named in the generated profiles.yml. */
  profile?: string;
  target: string;
  command: string;
  /** What of the project the command was asked for; absent in records written before it was kept. */
  selection?: RecordedSelection;
  /** Whether it built the whole project, from command, selection and deferral (see contentsOf for older records). */
  contents?: BuildContents;
  warehouse: WarehouseIdentity;
  /** The target's schema renamed for this commit. */
  schema: string;
  /** Every schema the build's manifest materialises into: `schema` and its custom siblings. */
  schemas: string[];
  status: BuildStatus;
  phase?: BuildPhase;
  /** Whether the build reused the commit's checkout, widened it, made it, or remade a broken one. */
  checkout?: CheckoutState;
  /** The folders the checkout held for the build: the repository's, or a sparse few. */
  checkoutFolders?: CheckoutFolders;
  /** A slim build: it built what changed since this commit's build and read the rest from its schema. */
  deferredTo?: BaseBuild;
  /**
   * The bases of earlier slim builds into these schemas, whose views may still read them: kept
   * from record to record until a complete build succeeds here (see carriedReads).
   */
  readsFrom?: BaseBuild[];
  /** The schemas this build is promoted to (see promote/plan.ts), with when. */
  promoted?: { schema: string; at: string }[];
  /** A build of the same commit, project and target that died before this one started over. */
  recoveredFrom?: { startedAt: string; phase: BuildPhase };
  /**
   * Per node, what its relation was made from, upstream included (fingerprints/fingerprints.ts):
   * kept for a build that succeeded and holds the whole project, so that a later build can tell
   * which of its relations are the same.
   */
  fingerprints?: Fingerprints;
  /** The build that did not succeed and that this one retried (`--command=retry`): it records what that one was asked for. */
  retried?: { startedAt: string; status: BuildRecord['status'] };
  /** The key Nx cached the build under, when it was cached. */
  key?: string;
  /** The workspace whose build ran dbt (see workspaceId); a record restored from a cache keeps it. */
  builtBy?: string;
  startedAt: string;
  endedAt?: string;
  results?: RunResultsSummary;
  error?: string;
  /** Set when the artifacts came from Nx's cache instead of a dbt run here. */
  restoredFromCacheAt?: string;
  /** When this workspace recorded its claim on a restored build's schemas in the warehouse (warehouse/claims.ts). */
  claimedAt?: string;
  /** Set by a clean that kept the warehouse: the record stays so that a later clean can drop the schemas. */
  filesRemovedAt?: string;
}

/** The lock a build holds while it writes its record, folder and schemas; so does whatever else writes the record. */
export function buildLockName(commit: string, project: string, dbtTarget: string): string {
  return `build-${commit}-${project}-${dbtTarget}`;
}

/** Whether the workspace `workspace` ran dbt for the record (older records: not restored from a cache). */
export function builtHere(record: BuildRecord, workspace: string): boolean {
  return record.builtBy === undefined ? record.restoredFromCacheAt === undefined : record.builtBy === workspace;
}

export function writeBuildRecord(file: string, record: BuildRecord): void {
  writeJsonAtomically(file, record);
}

export function readBuildRecord(file: string): BuildRecord | undefined {
  const record = readJson<BuildRecord>(file);
  return typeof record?.commit === 'string' && typeof record.buildId === 'string' ? record : undefined;
}

export interface RecordedBuild {
  record: BuildRecord;
  paths: BuildPaths;
}

/** Every build recorded under `.dot/<id>/<project>/<dbt target>/build.json`, of one project or all. */
export function listRecordedBuilds(workspaceRoot: string, project?: string): RecordedBuild[] {
  const builds: RecordedBuild[] = [];
  const root = dotRoot(workspaceRoot);
  for (const buildId of readdirOrEmpty(root)) {
    for (const projectFolder of readdirOrEmpty(join(root, buildId))) {
      for (const target of readdirOrEmpty(join(root, buildId, projectFolder))) {
        const record = readBuildRecord(join(root, buildId, projectFolder, target, 'build.json'));
        if (!record || record.buildId !== buildId || (project !== undefined && record.project !== project)) continue;
        const paths = buildPaths(workspaceRoot, buildId, record.project, record.target);
        if (paths.buildRecord === join(root, buildId, projectFolder, target, 'build.json')) {
          builds.push({ record, paths });
        }
      }
    }
  }
  return builds;
}

/**
 * This workspace's id, made once and kept in `.dot/workspace.json`. Records name the workspace
 * that ran dbt, so that a build restored from a cache filled by another clone is told apart
 * from one made here: clean drops only the schemas this workspace created.
 */
export function workspaceId(workspaceRoot: string): string {
  const file = join(dotRoot(workspaceRoot), 'workspace.json');
  const existing = readJson<{ id?: unknown }>(file)?.id;
  if (typeof existing === 'string') return existing;
  // Made by the first build or clean: `.dot` gets its .gitignore before anything lands in it.
  ensureDotFolder(workspaceRoot);
  const temporary = `${file}.${process.pid}.tmp`;
  writeJsonAtomically(temporary, { id: randomUUID() });
  try {
    // A link fails where the file exists: of two processes making the id at once, one wins.
    linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
  return readJson<{ id: string }>(file)!.id;
}

/**
 * What a new build's schemas may still read of other builds, from the record it replaces: a
 * build that is not complete leaves in place the relations an earlier slim build made over its
 * base (a `--select` after a slim build), so the base stays read until a complete build succeeds.
 */
export function carriedReads(previous: BuildRecord | undefined): BaseBuild[] | undefined {
  if (!previous) return undefined;
  const reads = [...(previous.readsFrom ?? []), ...(previous.deferredTo ? [previous.deferredTo] : [])];
  const distinct = reads.filter((read, index) => reads.findIndex((other) => other.commit === read.commit) === index);
  return distinct.length > 0 ? distinct : undefined;
}
