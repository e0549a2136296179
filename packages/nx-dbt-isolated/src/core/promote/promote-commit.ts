import { findDbt } from '../dbt/executable';
import { resolveDbtTarget } from '../dbt/target';
import { locksDir } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { findFullBuild, type BuildCommit } from '../build/full-build';
import { withLock } from '../workspace/lock';
import type { WarehouseConnection } from '../dbt/operation';
import { applyPromotion, planPromotion, promotedViews, readPromotionState, type PromotionPlan } from './plan';
import {
  buildLockName,
  listRecordedBuilds,
  readBuildRecord,
  writeBuildRecord,
  type RecordedBuild,
} from '../build/records';
import { repositoryRoot, resolveCommit } from '../git/refs';
import { withWarehouseLock } from '../warehouse/duckdb-lock';
import type { Reporter } from '../workspace/reporter';

export interface PromoteRequest {
  workspaceRoot: string;
  project: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  /** The project's isolated-build target, for messages and for building a missing build. */
  targetName: string;
  ref: string;
  dbtTarget?: string;
  /** Where the views go; the dbt target's own schema when absent. */
  schema?: string;
  dryRun: boolean;
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
  now: Date;
  /** Builds the commit when it has no full isolated build. */
  build?: BuildCommit;
}

export interface PromoteResult {
  build: RecordedBuild;
  promotedAs: string;
  plan: PromotionPlan;
  /** Relations of the build left out, with why. */
  skipped: string[];
}

/**
 * Makes `schema` (and its custom siblings) views over the relations of the commit's isolated
 * build, switched in one transaction, and marks the build promoted so that clean keeps it.
 */
export async function promoteCommit(request: PromoteRequest, reporter: Reporter): Promise<PromoteResult> {
  const commit = await resolveCommit(await repositoryRoot(request.workspaceRoot), request.ref);
  const dbtTarget = resolveDbtTarget({ ...request, target: request.dbtTarget });
  const promotedAs = request.schema ?? dbtTarget.schema;
  const build = await findFullBuild({
    ...request,
    dbtTarget: dbtTarget.target,
    commit,
    purpose: 'to promote',
  });
  refuseIsolatedName(promotedAs, build);
  const { views, skipped } = promotedViews(build, promotedAs);
  const connection: WarehouseConnection = {
    workspaceRoot: request.workspaceRoot,
    dbt: findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH),
    profilesDir: build.paths.profilesDir,
    profile: build.record.profile ?? dbtTarget.profile,
    target: build.record.target,
    env: request.env,
  };
  const plan = await withWarehouseLock(request.workspaceRoot, build.record.warehouse, reporter, async () => {
    const state = await readPromotionState(connection, [...new Set(views.map((view) => view.schema))]);
    const planned = planPromotion(views, state, promotedAs);
    if (request.dryRun) return planned;
    const stamp = { commit, project: request.project, promotedAs, at: request.now.toISOString() };
    await applyPromotion(connection, planned, state, stamp, build.record.warehouse.type);
    await markPromoted(request, build, promotedAs);
    return planned;
  });
  return { build, promotedAs, plan, skipped };
}

/** A build's own schemas hold its tables: views of the same names cannot go there. */
function refuseIsolatedName(promotedAs: string, build: RecordedBuild): void {
  const isolated = build.record.schemas.length > 0 ? build.record.schemas : [build.record.schema];
  if (!isolated.includes(promotedAs)) return;
  throw new UserError(
    `--schema=${promotedAs} is a schema of the build being promoted: promote to the schema readers use, e.g. the dbt target's own schema.`,
  );
}

/**
 * Notes the promotion in the build's record, and takes it off the record of the build promoted
 * to that schema before, each under the lock its build writes the record under.
 */
async function markPromoted(request: PromoteRequest, promoted: RecordedBuild, promotedAs: string): Promise<void> {
  const location = promoted.record.warehouse.location;
  for (const { record, paths } of listRecordedBuilds(request.workspaceRoot, request.project)) {
    const isPromoted = record.commit === promoted.record.commit && record.target === promoted.record.target;
    const held = record.promoted?.some((entry) => entry.schema === promotedAs);
    if (!isPromoted && (!held || record.warehouse.location !== location)) continue;
    const lock = buildLockName(record.commit, record.project, record.target);
    await withLock(locksDir(request.workspaceRoot), lock, async () => {
      const current = readBuildRecord(paths.buildRecord);
      if (!current) return;
      const others = (current.promoted ?? []).filter((entry) => entry.schema !== promotedAs);
      current.promoted = isPromoted ? [...others, { schema: promotedAs, at: request.now.toISOString() }] : others;
      if (current.promoted.length === 0) delete current.promoted;
      writeBuildRecord(paths.buildRecord, current);
    });
  }
}
