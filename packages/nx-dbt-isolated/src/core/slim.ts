import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { allocateBuildId } from './checkout';
import type { DbtSelection } from './dbt';
import { buildPaths } from './dot-layout';
import { UserError } from './errors';
import { readBuildRecord, type BuildRecord } from './records';

/** The full isolated build a slim build compares against and reads unchanged relations from. */
export interface DeferralBase {
  commit: string;
  ref: string;
  /** The base build's own schema, where the relations the slim build leaves out live. */
  schema: string;
  /** The base build's target folder: its manifest.json is dbt's --state. */
  statePath: string;
}

export interface DeferralRequest {
  workspaceRoot: string;
  /** The Nx project and target, as a user would type them to build the base. */
  project: string;
  targetName: string;
  dbtTarget: string;
  ref: string;
  commit: string;
  /** Builds the base when it has none; without it, a missing base is the user's to build. */
  buildBase?: (commit: string, dbtTarget: string) => Promise<void>;
}

/** The commit's isolated build to defer to: a full, succeeded build of the same project and dbt target. */
export async function findDeferralBase(request: DeferralRequest): Promise<DeferralBase> {
  const found = usableBase(request);
  if (found.base) return found.base;
  if (!request.buildBase) refuse(request, found.record);
  await request.buildBase(request.commit, request.dbtTarget);
  const rebuilt = usableBase(request);
  return rebuilt.base ?? refuse(request, rebuilt.record);
}

function usableBase(request: DeferralRequest): { base?: DeferralBase; record?: BuildRecord } {
  const buildId = allocateBuildId(request.workspaceRoot, request.commit);
  const paths = buildPaths(request.workspaceRoot, buildId, request.project, request.dbtTarget);
  const record = readBuildRecord(paths.buildRecord);
  if (record?.commit !== request.commit) return {};
  const manifest = join(paths.targetPath, 'manifest.json');
  if (record.status !== 'succeeded' || record.deferredTo || !existsSync(manifest)) return { record };
  return { base: { commit: request.commit, ref: request.ref, schema: record.schema, statePath: paths.targetPath } };
}

function refuse(request: DeferralRequest, record: BuildRecord | undefined): never {
  const { project, targetName, dbtTarget, ref } = request;
  const base = `the isolated build of ${project} at ${ref} (${request.commit.slice(0, 8)}) for dbt target ${dbtTarget}`;
  const buildIt = `nx run ${project}:${targetName} --ref=${ref}`;
  if (!record) {
    throw new UserError(
      `no isolated build of ${project} at ${ref} (${request.commit.slice(0, 8)}) for dbt target ${dbtTarget} to defer to: build it first (${buildIt}), or add --buildBase.`,
    );
  }
  if (record.deferredTo) {
    throw new UserError(
      `${base} is itself a slim build, which holds only what changed: defer to a full build (${buildIt} without --deferTo).`,
    );
  }
  throw new UserError(
    `${base} ${record.status === 'succeeded' ? 'has no manifest.json' : record.status}, so there is nothing to defer to: build it again (${buildIt}).`,
  );
}

/**
 * dbt's slim CI: what changed since the base and everything downstream of it, unless the user
 * selected nodes themselves; every other reference reads the base's relations, even where the
 * head's schema holds a relation of that name from an earlier build (--favor-state).
 */
export function slimSelection(selection: DbtSelection, base: DeferralBase): DbtSelection {
  return {
    ...selection,
    select: selection.select?.length ? selection.select : ['state:modified+'],
    extraArgs: ['--defer', '--state', base.statePath, '--favor-state', ...(selection.extraArgs ?? [])],
  };
}
