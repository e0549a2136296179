import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stagingDir, commitPaths, leasesDir, locksDir } from '../workspace/dot-layout';
import { commitLockName, GIT_WORKTREES_LOCK, removeCheckout } from '../git/checkout';
import { markSchemasDropped } from '../cache/key-marks';
import { decide, type CleanSelector, type Decision } from './policy';
import { findDbt } from '../dbt/executable';
import { schemasInManifest } from '../dbt/artifacts';
import { errorMessage, UserError } from '../workspace/errors';
import { readdirOrEmpty } from '../workspace/files';
import { removeLeftovers } from './leftovers';
import { describeHolder, liveLeaseHolders, liveLeases, withLock, withLocks } from '../workspace/lock';
import { duckDbFile, parseProfiles, PROFILES_FILE, sameWarehouse } from '../dbt/profiles';
import {
  builtHere,
  listRecordedBuilds,
  readBuildRecord,
  workspaceId,
  writeBuildRecord,
  type BuildRecord,
  type RecordedBuild,
} from '../build/records';
import { commitsNamedBy, isReachable, repositoryRoot, resolveCommit } from '../git/refs';
import { retiredNames } from '../promote/rebuild';
import { dropSchemas } from '../warehouse/schema-drop';
import { withWarehouseLock } from '../warehouse/duckdb-lock';
import { claimedReason, keepsClaims, releaseClaimsAndDrop } from '../warehouse/claims';
import { endLeftoverRoles } from '../warehouse/strict-isolation';
import type { WarehouseConnection } from '../dbt/operation';
import type { Reporter } from '../workspace/reporter';
import { adapterFor } from '../dbt/adapters';

export interface CleanRequest {
  workspaceRoot: string;
  project: string;
  /** The project's Nx target that promotes, for the commands messages suggest. */
  promoteTarget: string;
  selector: CleanSelector;
  /** Only the builds against this dbt target. */
  dbtTarget?: string;
  /** Refs whose commits only `--ref` cleans (see commitsNamedBy). */
  protect: string[];
  /** False: leave the warehouse alone and keep the records, so a later clean can still drop the schemas. */
  dropSchemas: boolean;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  now: Date;
}

export interface PlannedBuild extends RecordedBuild {
  decision: Decision;
  /** What a clean of this build drops. */
  schemas: string[];
  /** The build's schemas it leaves, with why. */
  keptSchemas: { schema: string; reason: string }[];
}

export interface CleanPlan {
  /** Every recorded build of the project (and dbt target), newest first. */
  builds: PlannedBuild[];
}

/** Lists the project's recorded builds with what a clean would do to each; changes nothing. */
export async function planClean(request: CleanRequest): Promise<CleanPlan> {
  const everyBuild = listRecordedBuilds(request.workspaceRoot);
  const builds = everyBuild
    .filter(({ record }) => record.project === request.project)
    .filter(({ record }) => request.dbtTarget === undefined || record.target === request.dbtTarget)
    .sort((a, b) => b.record.startedAt.localeCompare(a.record.startedAt));
  const facts = await selectionFacts(request, builds);
  refuseNamedPromotedBuilds(builds, facts.namedCommits, request);
  const decisions = decide(
    builds.map(({ record }) => record),
    request.selector,
    facts,
  );
  const planned = builds.map((build, index) => ({
    ...build,
    decision: decisions[index],
    schemas: [],
    keptSchemas: [],
  }));
  const cleaning = new Set(planned.filter((build) => build.decision.clean).map((build) => build.record));
  const staying = everyBuild.filter(({ record }) => !cleaning.has(record));
  const owner = workspaceId(request.workspaceRoot);
  for (const build of planned.filter((candidate) => candidate.decision.clean)) {
    if (request.dropSchemas) Object.assign(build, schemasOf(build, staying, owner));
    else if (build.record.filesRemovedAt !== undefined) {
      build.decision = { clean: false, reason: 'files already removed, schemas kept' };
    }
  }
  return { builds: planned };
}

/** `--ref` asks for particular builds: one promoted is an error, not a quiet skip. */
function refuseNamedPromotedBuilds(
  builds: RecordedBuild[],
  namedCommits: Map<string, string>,
  request: CleanRequest,
): void {
  const promoted = builds.find(({ record }) => namedCommits.has(record.commit) && record.promoted?.length);
  if (!promoted) return;
  const { record } = promoted;
  const schemas = record.promoted!.map((entry) => entry.schema).join(', ');
  throw new UserError(
    `the build of ${record.project} at ${namedCommits.get(record.commit)} (${record.buildId}, dbt target ${record.target}) is promoted to ${schemas}, whose views read its schemas: promote another commit there first (${promoteCommand(request)} --ref=<ref>), then clean it.`,
  );
}

async function selectionFacts(request: CleanRequest, builds: RecordedBuild[]) {
  const repoRoot = await repositoryRoot(request.workspaceRoot);
  const { selector } = request;
  const namedCommits = new Map<string, string>();
  if (selector.kind === 'refs') {
    for (const ref of selector.refs) namedCommits.set(await commitOfRef(repoRoot, ref, builds, request.project), ref);
  }
  const unreachableCommits = new Set<string>();
  if (selector.kind === 'filters' && selector.unreachable) {
    for (const commit of new Set(builds.map(({ record }) => record.commit))) {
      if (!(await isReachable(repoRoot, commit))) unreachableCommits.add(commit);
    }
  }
  const protectedCommits = await commitsNamedBy(repoRoot, request.protect);
  return { now: request.now, namedCommits, protectedCommits, unreachableCommits };
}

/** The commit of a ref; a ref git no longer knows may still be the start of a recorded build's commit. */
async function commitOfRef(repoRoot: string, ref: string, builds: RecordedBuild[], project: string): Promise<string> {
  const resolved = await resolveCommit(repoRoot, ref).catch(() => undefined);
  if (resolved) return resolved;
  const commits = new Set(builds.map(({ record }) => record.commit));
  const matching = [...commits].filter((commit) => /^[0-9a-f]{4,}$/.test(ref) && commit.startsWith(ref));
  if (matching.length === 1) return matching[0];
  const known = [...new Set(builds.map(({ record }) => `${record.buildId} (${record.ref})`))].join(', ') || 'none';
  throw new UserError(
    `ref '${ref}' names no commit here and no recorded build of ${project} (builds: ${known}): pass a branch, tag or sha, or one of those ids.`,
  );
}

/**
 * The schemas a clean of `build` drops: those its record and manifest list that are the build's
 * own, `<schema>_<id>` or `<schema>_<id>_<custom>`, and that no build staying in the workspace
 * uses in the same warehouse. Builds restored from a cache another workspace filled leave the
 * warehouse to that workspace.
 */
function schemasOf(build: RecordedBuild, staying: RecordedBuild[], owner: string) {
  const { record, paths } = build;
  const listed = [
    ...new Set([record.schema, ...record.schemas, ...schemasInManifest(join(paths.targetPath, 'manifest.json'))]),
  ];
  if (!builtHere(record, owner) && !keepsClaims(record.warehouse)) {
    return { schemas: [], keptSchemas: listed.map((schema) => ({ schema, reason: 'built by another workspace' })) };
  }
  const schemas: string[] = [];
  const keptSchemas: { schema: string; reason: string }[] = [];
  for (const schema of listed.sort()) {
    const user = staying.find(
      (other) =>
        sameWarehouse(other.record.warehouse, record.warehouse) &&
        [other.record.schema, ...other.record.schemas].includes(schema),
    );
    if (!isIsolatedSchema(schema, record)) keptSchemas.push({ schema, reason: `not under ${record.schema}` });
    else if (user) keptSchemas.push({ schema, reason: `used by ${user.record.project} at ${user.record.buildId}` });
    else schemas.push(schema);
  }
  return { schemas, keptSchemas };
}

function isIsolatedSchema(schema: string, record: BuildRecord): boolean {
  // A record of an older build may hold an unrendered `{{ env_var() }}` schema: nothing is known to be its own.
  if (record.schema.includes('{{') || !record.schema.endsWith(`_${record.buildId}`)) return false;
  return schema === record.schema || schema.startsWith(`${record.schema}_`);
}

export interface CleanOutcome {
  build: PlannedBuild;
  status: 'cleaned' | 'skipped' | 'failed';
  detail: string;
}

/**
 * Finds out which of the schemas a clean would drop exist, without changing anything: what a
 * dry run shows. Builds whose warehouse cannot be reached are left out of the map.
 */
export async function existingSchemas(
  plan: CleanPlan,
  request: CleanRequest,
  reporter: Reporter,
): Promise<Map<PlannedBuild, string[]>> {
  const found = new Map<PlannedBuild, string[]>();
  const selected = plan.builds.filter((build) => build.decision.clean && build.schemas.length > 0);
  for (const group of warehouseGroups(selected)) {
    const existing = await inWarehouse(request, group, false, reporter).catch((error: unknown) => {
      if (error instanceof UserError) return undefined;
      throw error;
    });
    if (!existing) continue;
    for (const build of group)
      found.set(
        build,
        build.schemas.filter((schema) => existing.includes(schema)),
      );
  }
  return found;
}

/**
 * Cleans the selected builds of the plan. Each selected commit's lock is held throughout, so no
 * build of it starts meanwhile; a build already running there is skipped. Schemas are dropped
 * before any file goes, and the drop is noted in the build key first, so a clean interrupted at
 * any point can run again and finish, and no cache hit claims a dropped schema. Then it removes
 * what dead builds, cleans and operations left (leftovers.ts), whatever the plan selected.
 */
export async function executeClean(
  plan: CleanPlan,
  request: CleanRequest,
  reporter: Reporter,
): Promise<CleanOutcome[]> {
  const selected = plan.builds.filter((build) => build.decision.clean);
  const repoRoot = await repositoryRoot(request.workspaceRoot);
  const outcomes = selected.length === 0 ? [] : await cleanSelected(selected, repoRoot, request, reporter);
  for (const line of await removeLeftovers(repoRoot, request.workspaceRoot)) reporter.info(`  ${line}`);
  return outcomes;
}

async function cleanSelected(
  selected: PlannedBuild[],
  repoRoot: string,
  request: CleanRequest,
  reporter: Reporter,
): Promise<CleanOutcome[]> {
  const locks = locksDir(request.workspaceRoot);
  const commits = [...new Set(selected.map((build) => build.record.commit))];
  return withLocks(
    locks,
    commits.map(commitLockName),
    async () => {
      const outcomes = new Map<PlannedBuild, CleanOutcome>();
      const ready: PlannedBuild[] = [];
      for (const build of selected) {
        const blocked = await whyNotNow(build, request);
        if (blocked) outcomes.set(build, { build, ...blocked });
        else ready.push(build);
      }
      const claimed = new Map<PlannedBuild, string>();
      const found = new Map<PlannedBuild, string[]>();
      const dropped = await dropSelectedSchemas(ready, request, { outcomes, claimed, found }, reporter);
      for (const build of dropped) {
        const schemas = !request.dropSchemas
          ? 'schemas kept (--schemas=false)'
          : claimed.has(build)
            ? `kept ${build.schemas.join(', ')}: ${claimed.get(build)}`
            : droppedDetail(build, found.get(build) ?? []);
        const removed = removeBuildFiles(request, build);
        outcomes.set(build, { build, status: 'cleaned', detail: `${schemas}; ${removed}` });
      }
      const checkouts = new Map(dropped.map(({ record }) => [record.commit, record.buildId]));
      for (const [commit, buildId] of checkouts) {
        const removed = await removeCheckoutIfUnused(repoRoot, request.workspaceRoot, commit, buildId);
        if (removed) reporter.info(`  removed checkout ${relative(request.workspaceRoot, removed)}`);
      }
      return selected.map((build) => outcomes.get(build)!);
    },
    {
      onWait: (holder) =>
        reporter.info(
          `waiting up to ${CHECKOUT_WAIT_MS / 60_000} min for ${holder ? describeHolder(holder) : 'another process'} to finish with these commits (a build making its checkout, or another clean)`,
        ),
      timeoutMs: CHECKOUT_WAIT_MS,
    },
  );
}

/** How long a clean waits for a build's checkout of the same commit: a stopped build would hold it forever. */
const CHECKOUT_WAIT_MS = 5 * 60_000;

/**
 * Why a build cannot be cleaned now. One that is running (or stopped with Ctrl-Z, which keeps it
 * alive) is refused when `--ref` named it, and skipped by a policy clean.
 */
async function whyNotNow(
  { record, paths }: PlannedBuild,
  request: CleanRequest,
): Promise<Pick<CleanOutcome, 'status' | 'detail'> | undefined> {
  const leases = await liveLeases(leasesDir(request.workspaceRoot, record.commit));
  const running = leases.find((lease) => lease.holder === record.project);
  if (running) {
    return {
      status: request.selector.kind === 'refs' ? 'failed' : 'skipped',
      detail: `an isolated build of ${record.project} at ${record.buildId} is running now in ${describeHolder(running.owner)}: clean it once that build has finished`,
    };
  }
  const current = readBuildRecord(paths.buildRecord);
  const skipped = (detail: string) => ({ status: 'skipped' as const, detail });
  if (current === undefined) return skipped('already cleaned by another clean');
  if (current.startedAt !== record.startedAt)
    return skipped('built again since the plan was made: run the clean again');
  return undefined;
}

/** What happened to each of the build's schemas: dropped, or already absent. */
function droppedDetail(build: PlannedBuild, found: string[]): string {
  if (build.schemas.length === 0) return 'no schema of its own to drop';
  const absent = build.schemas.filter((schema) => !found.includes(schema));
  const parts = found.length > 0 ? [`dropped ${found.join(', ')}`] : ['dropped no schema'];
  if (absent.length > 0) parts.push(`already absent: ${absent.join(', ')}`);
  return parts.join('; ');
}

interface DropResults {
  outcomes: Map<PlannedBuild, CleanOutcome>;
  /** Builds whose schemas another workspace still claims, with why. */
  claimed: Map<PlannedBuild, string>;
  /** The schemas of each build that existed, and are dropped now. */
  found: Map<PlannedBuild, string[]>;
}

/** Drops the schemas of the builds, one dbt run per warehouse; returns the builds whose schemas are gone. */
async function dropSelectedSchemas(
  builds: PlannedBuild[],
  request: CleanRequest,
  { outcomes, claimed, found }: DropResults,
  reporter: Reporter,
): Promise<PlannedBuild[]> {
  const done = builds.filter((build) => build.schemas.length === 0);
  for (const build of builds.filter((candidate) => candidate.schemas.length > 0)) {
    markSchemasDropped(request.workspaceRoot, build.record.project, build.record.commit);
  }
  for (const group of warehouseGroups(builds.filter((build) => build.schemas.length > 0))) {
    try {
      const existing = await dropGroup(request, group, claimed, reporter);
      const kept = group.filter((build) => claimed.has(build));
      if (existing.length > 0 || kept.length < group.length) {
        reporter.info(`  dropped ${existing.length > 0 ? existing.join(', ') : 'no schema (none of them existed)'}`);
      }
      for (const build of kept) reporter.info(`  kept ${build.schemas.join(', ')}: ${claimed.get(build)}`);
      for (const build of group)
        found.set(
          build,
          schemasWithRetired(build).filter((schema) => existing.includes(schema)),
        );
      await endRolesOfUnfinishedBuilds(request, group);
      done.push(...group);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      for (const build of group) outcomes.set(build, { build, status: 'failed', detail: errorMessage(error) });
    }
  }
  return done;
}

/** Builds whose schemas one dbt connection can drop: same warehouse, profile and dbt target. */
function warehouseGroups(builds: PlannedBuild[]): PlannedBuild[][] {
  const groups = new Map<string, PlannedBuild[]>();
  for (const build of builds) {
    const { warehouse, target } = build.record;
    const key = JSON.stringify([warehouse.type, warehouse.location, profileOf(build), target]);
    groups.set(key, [...(groups.get(key) ?? []), build]);
  }
  return [...groups.values()];
}

/**
 * Drops one group's schemas. Where the warehouse keeps claims (warehouse/claims.ts), this workspace's claims
 * go first and a build another workspace still claims keeps its schemas: noted in `claimed`.
 */
async function dropGroup(
  request: CleanRequest,
  group: PlannedBuild[],
  claimed: Map<PlannedBuild, string>,
  reporter: Reporter,
): Promise<string[]> {
  const [first] = group;
  if (!keepsClaims(first.record.warehouse)) return inWarehouse(request, group, true, reporter);
  const workspace = workspaceId(request.workspaceRoot);
  const released = group.map((build) => ({
    schema: build.record.schema,
    schemas: schemasWithRetired(build),
    project: build.record.project,
    builtHere: builtHere(build.record, workspace),
  }));
  const outcome = await releaseClaimsAndDrop(
    connectionOf(request, group),
    workspace,
    released,
    promoteCommand(request),
  );
  for (const build of group) {
    const claimants = outcome.claimed.get(build.record.schema);
    if (claimants) claimed.set(build, claimedReason(claimants));
  }
  return outcome.existing;
}

function promoteCommand(request: CleanRequest): string {
  return `nx run ${request.project}:${request.promoteTarget}`;
}

/** A build's schemas and the retired generation a rebuild of it that died may have left (promote/rebuild.ts). */
function schemasWithRetired({ schemas, record }: PlannedBuild): string[] {
  return [...schemas, ...retiredNames(schemas, record)];
}

/** Runs the schema drop (or the look) for one group, holding the DuckDB file's lock where there is one. */
async function inWarehouse(
  request: CleanRequest,
  group: PlannedBuild[],
  drop: boolean,
  reporter: Reporter,
): Promise<string[]> {
  const [first] = group;
  const schemas = [...new Set(group.flatMap(schemasWithRetired))];
  const file = duckDbFile(first.record.warehouse);
  // Connecting to a DuckDB file that is gone would create an empty one: its schemas are gone with it.
  if (file && !existsSync(file)) return [];
  const connection = connectionOf(request, group);
  return withWarehouseLock(request.workspaceRoot, first.record.warehouse, reporter, () =>
    dropSchemas({ ...connection, schemas, drop, promoteCommand: promoteCommand(request) }),
  );
}

/** A PostgreSQL build that did not finish may have left its strictIsolation role: it goes with the schemas. */
async function endRolesOfUnfinishedBuilds(request: CleanRequest, group: PlannedBuild[]): Promise<void> {
  const unfinished = group.filter(
    ({ record, schemas }) =>
      adapterFor(record.warehouse.type).rolesAndClaims &&
      record.status !== 'succeeded' &&
      schemas.includes(record.schema),
  );
  if (unfinished.length === 0) return;
  await endLeftoverRoles(
    connectionOf(request, group),
    unfinished.map(({ record }) => record.schema),
  );
}

/**
 * Connects with the generated profile of the first build of the group that still has a usable
 * one: a clean killed while removing a build's folder leaves that build's profile gone or cut
 * short, and the group's other profiles reach the same warehouse, profile and dbt target.
 */
function connectionOf(request: CleanRequest, group: PlannedBuild[]): WarehouseConnection {
  const usable = group.find((build) => profileProblem(build) === undefined);
  if (!usable) throw unusableProfiles(group);
  return {
    workspaceRoot: request.workspaceRoot,
    dbt: findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH),
    profilesDir: usable.paths.profilesDir,
    profile: profileOf(usable)!,
    target: usable.record.target,
    env: request.env,
  };
}

/** The profile the build connected with: named in its record, or in its generated profiles.yml. */
function profileOf(build: RecordedBuild): string | undefined {
  return build.record.profile ?? Object.keys(generatedProfiles(build) ?? {}).find((name) => name !== 'config');
}

function generatedProfiles({ paths }: RecordedBuild): Record<string, unknown> | undefined {
  const file = join(paths.profilesDir, PROFILES_FILE);
  try {
    return parseProfiles(readFileSync(file, 'utf8'), file);
  } catch {
    return undefined;
  }
}

/** Why dbt cannot connect with the build's generated profile, if it cannot. */
function profileProblem(build: RecordedBuild): string | undefined {
  if (!existsSync(join(build.paths.profilesDir, PROFILES_FILE))) return 'gone';
  const profiles = generatedProfiles(build);
  if (profiles === undefined) return 'not valid YAML';
  const profile = profileOf(build) ?? '';
  const outputs = (profiles[profile] as { outputs?: Record<string, unknown> } | undefined)?.outputs;
  return outputs?.[build.record.target] === undefined
    ? `no output ${build.record.target} of profile '${profile}'`
    : undefined;
}

function unusableProfiles(group: PlannedBuild[]): UserError {
  const [first] = group;
  const file = join(first.paths.profilesDir, PROFILES_FILE);
  const ids = group.map(({ record }) => record.buildId).join(', ');
  const schemas = group.map(({ record }) => `${record.schema}*`).join(', ');
  return new UserError(
    `the generated profile of build ${ids} (${first.record.target}) is gone or unusable (${file}: ${profileProblem(first)}), so its schemas cannot be reached: drop ${schemas} by hand, then clean it with --schemas=false.`,
  );
}

/** Removes the build's folder, or with --schemas=false all but what a later drop needs. Says what went. */
function removeBuildFiles(request: CleanRequest, { record, paths }: PlannedBuild): string {
  const where = relative(request.workspaceRoot, paths.buildDir);
  if (record.key) {
    rmSync(join(stagingDir(request.workspaceRoot, record.project), record.key), { recursive: true, force: true });
  }
  // A claim kept in the warehouse needs the record too, so that a later clean releases it; a
  // record whose generated profile is unusable cannot serve a later drop (see unusableProfiles).
  const keptForLater =
    (builtHere(record, workspaceId(request.workspaceRoot)) || keepsClaims(record.warehouse)) &&
    profileProblem({ record, paths }) === undefined;
  if (!request.dropSchemas && keptForLater) {
    rmSync(paths.targetPath, { recursive: true, force: true });
    rmSync(paths.logPath, { recursive: true, force: true });
    rmSync(paths.commandsDir, { recursive: true, force: true });
    writeBuildRecord(paths.buildRecord, { ...record, filesRemovedAt: new Date().toISOString() });
    return `removed the artifacts and logs in ${where}, kept its record and profile to drop its schemas later`;
  }
  rmSync(paths.buildDir, { recursive: true, force: true });
  const otherBuilds = readdirOrEmpty(paths.projectDir).filter((entry) =>
    existsSync(join(paths.projectDir, entry, 'build.json')),
  );
  if (otherBuilds.length === 0) rmSync(paths.projectDir, { recursive: true, force: true });
  return `removed ${where}`;
}

/**
 * Removes the commit's checkout once no build uses it: none running (leases) and none whose files
 * remain. The commit's folder goes too when no record is left in it. Returns the checkout removed.
 */
async function removeCheckoutIfUnused(
  repoRoot: string,
  workspaceRoot: string,
  commit: string,
  buildId: string,
): Promise<string | undefined> {
  if ((await liveLeaseHolders(leasesDir(workspaceRoot, commit))).length > 0) return undefined;
  const remaining = listRecordedBuilds(workspaceRoot).filter(({ record }) => record.commit === commit);
  if (remaining.some(({ record }) => record.filesRemovedAt === undefined)) return undefined;
  const paths = commitPaths(workspaceRoot, buildId);
  if (!existsSync(paths.worktree) && remaining.length > 0) return undefined;
  await withLock(locksDir(workspaceRoot), GIT_WORKTREES_LOCK, () =>
    removeCheckout(repoRoot, workspaceRoot, paths.worktree),
  );
  if (remaining.length === 0) {
    rmSync(paths.commitDir, { recursive: true, force: true });
    rmSync(leasesDir(workspaceRoot, commit), { recursive: true, force: true });
  }
  return paths.worktree;
}
