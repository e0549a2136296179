import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stageArtifacts } from '../cache/staged-artifacts';
import { buildHold } from '../warehouse/claims';
import { markRebuilt } from '../cache/key-marks';
import { buildSummary, writeBuildSummary } from './summary';
import { buildKey, keyedBeforeRebuild, keyMismatchError, UNCACHEABLE } from '../cache/key';
import { ensureCheckout, type Checkout, type LeasedCheckout } from '../git/checkout';
import { removeUnrecordedCheckouts } from '../clean/leftovers';
import { declaresPackages, DBT_PROJECT_FILE, readDbtProject, type DbtProjectFile } from '../dbt/project';
import {
  dbtArgs,
  depsArgs,
  refusePluginOwnedArgs,
  storesAllTestFailures,
  type DbtCommand,
  type DbtSelection,
} from '../dbt/args';
import { dbtEnvironment, runDbt, stoppingGracefully, type DbtExit } from '../dbt/process';
import { findDbt, requirePythonDbt } from '../dbt/executable';
import { runDbtParsedFirst } from '../dbt/parse-then-run';
import { dbtTargetFor } from '../dbt/target';
import { schemasInManifest, summarizeRunResults, type WriteOptions } from '../dbt/artifacts';
import { dbtLogMark, dbtLogSince, knownDbtFailure } from '../dbt/failure';
import { escapeError, escapingNodes } from './guard';
import { readJson, writeJsonAtomically } from '../workspace/files';
import { buildPaths, ensureDotFolder, locksDir, type BuildPaths } from '../workspace/dot-layout';
import { BuildInterrupted, UserError, errorMessage } from '../workspace/errors';
import { ifStopped, withLock } from '../workspace/lock';
import { duckDbFile, isolateProfile, PROFILES_FILE, profilesFileFor, type IsolatedProfile } from '../dbt/profiles';
import { repositoryRoot, resolveCommit, submoduleHolding } from '../git/refs';
import {
  buildLockName,
  carriedReads,
  readBuildRecord,
  workspaceId,
  writeBuildRecord,
  type BuildPhase,
  type BuildRecord,
} from './records';
import { withWarehouseLock } from '../warehouse/duckdb-lock';
import { keepingPromotedViews, keepPromotion, planRebuild, type PromotedRebuild } from '../promote/rebuild';
import { rememberDuckDbFile } from '../cache/warehouse-token';
import { recordedSelection, reusableFullBuild } from './reuse';
import { findDeferralBase, slimSelection, type DeferralBase } from './slim';
import type { BuildCommit } from './full-build';
import { buildContents, writesNoRelation } from './contents';
import { releasingRole, strictIsolation } from '../warehouse/strict-isolation';
import { checkoutScope, type CheckoutFolders, type CheckoutScope } from '../git/sparse';
import type { Reporter } from '../workspace/reporter';

export interface IsolatedBuildRequest {
  workspaceRoot: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  /** Names the project's folders under `.dot/<short_hash>/`. */
  project: string;
  ref: string;
  /** The dbt target; DBT_TARGET, then the profile's default, when absent. */
  target?: string;
  command: DbtCommand;
  selection: DbtSelection;
  /** Relative to the workspace root. */
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
  /** Check out only the folders the build reads (default); false checks out every file. */
  sparseCheckout?: boolean;
  /** More folders the build reads, relative to the workspace root, for a sparse checkout. */
  checkoutFolders?: string[];
  /** Build only what changed since this ref's isolated build, reading everything else from it (slim.ts). */
  deferTo?: string;
  /** Builds the `deferTo` commit when it has no isolated build yet; absent, that is the user's to do. */
  buildBase?: BuildCommit;
  /** The Nx target that runs this build, for the commands messages suggest. */
  targetName: string;
  /** The project's Nx target that promotes, for the commands messages suggest. */
  promoteTarget: string;
  /** Node unique ids or names allowed to write outside the isolated schema (see guard.ts). */
  isolationExceptions?: string[];
  /** PostgreSQL: dbt's command runs as a role that may create only in the build's schemas (warehouse/strict-isolation.ts). */
  strictIsolation?: boolean;
  /**
   * The key Nx cached this build under (see cache/key.ts); checked against the commit actually
   * built so that a cache entry never holds another commit's build. Absent when not cached.
   */
  expectedKey?: string;
  /** When the key Nx hashed was computed, to tell a clean that ran meanwhile from a moved ref. */
  keyedAt?: Date;
  /** The Nx run that caches this build: what it stages is signed with it (see cache/staged-artifacts.ts). */
  runId?: string;
  /** The user asked to run dbt again (`--skip-nx-cache`): no earlier build is reused. */
  rebuild?: boolean;
}

export interface IsolatedBuildResult {
  success: boolean;
  record: BuildRecord;
  paths: BuildPaths;
}

/** One isolated build: ref → checkout → profile → deps → dbt, with a record of each step. */
export async function isolatedBuild(request: IsolatedBuildRequest, reporter: Reporter): Promise<IsolatedBuildResult> {
  refusePluginOwnedArgs(request.selection.extraArgs);
  const dbt = findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH);
  requirePythonDbt(dbt);
  return stoppingGracefully(async () => {
    const checkedOut = await checkoutProject(request, reporter);
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
  const { commit, checkout, projectDir, workingProjectDir } = checkedOut;
  // Before any step that can fail: Nx replays the output of a forced run that fails as that of the
  // entry it bypassed, so a forced run must leave that entry unmatched (ADR 24).
  if (request.rebuild && request.expectedKey !== undefined) markRebuilt(request.workspaceRoot, request.project, commit);
  const dbtProject = readDbtProject(
    projectDir,
    `${request.projectRoot}/${DBT_PROJECT_FILE} at ${request.ref} (${commit.slice(0, 12)})`,
  );
  if (!dbtProject.profile) {
    throw new UserError(
      `${request.projectRoot}/${DBT_PROJECT_FILE} has no 'profile:' at ${request.ref} (${commit.slice(0, 12)}), so dbt cannot build it: add 'profile: <name>' naming a profile in profiles.yml.`,
    );
  }
  const baseCommit = await deferralCommit(request, checkedOut);
  if (request.expectedKey !== undefined) verifyKey(request, commit, dbtProject.profile, baseCommit);
  const profile = isolatedProfileFor(request, dbtProject.profile, checkout.buildId, workingProjectDir);
  const paths = buildPaths(request.workspaceRoot, checkout.buildId, request.project, profile.target);
  // Two builds of one commit, project and target would share this folder and these schemas.
  return withLock(
    locksDir(request.workspaceRoot),
    buildLockName(commit, request.project, profile.target),
    () => reuseOrRunBuild({ request, reporter, dbt, checkedOut, dbtProject, profile, paths, baseCommit }),
    {
      onWait: (holder) =>
        reporter.info(`waiting for another build of ${request.project} at this commit to finish${ifStopped(holder)}`),
    },
  );
}

interface BuildContext {
  request: IsolatedBuildRequest;
  reporter: Reporter;
  dbt: string;
  checkedOut: ProjectCheckout;
  dbtProject: DbtProjectFile;
  profile: IsolatedProfile;
  paths: BuildPaths;
  /** The commit `deferTo` names; its build is looked up only when this one runs dbt. */
  baseCommit?: string;
  base?: DeferralBase;
}

/** Another name of a commit already built in full here under this key costs no dbt run (reuse.ts). */
async function reuseOrRunBuild(context: BuildContext): Promise<IsolatedBuildResult> {
  const { request, reporter, dbt, paths, profile } = context;
  const fullCommand = fullBuildCommand(request);
  const reused = await reusableFullBuild(
    { ...request, dbt, warehouse: profile.warehouse, fullCommand, promoteCommand: promoteCommand(request) },
    paths,
    reporter,
  );
  if (!reused) {
    const base =
      context.baseCommit === undefined ? undefined : await deferralBase(request, context.baseCommit, profile.target);
    return runBuild({ ...context, base });
  }
  reporter.info(
    request.deferTo === undefined
      ? `• restored the full build of ${reused.commit.slice(0, 12)} made at ${reused.startedAt} (as ${reused.ref}) under the same key: no dbt run`
      : `• this commit's full build, made at ${reused.startedAt}, holds everything a slim build of it would: served it, no dbt run`,
  );
  if (request.expectedKey !== undefined) keepForCache(context, reused);
  return { success: true, record: reused, paths };
}

async function runBuild(context: BuildContext): Promise<IsolatedBuildResult> {
  const { request, reporter, dbt, checkedOut, profile, paths, base } = context;
  mkdirSync(paths.profilesDir, { recursive: true });
  writeFileSync(join(paths.profilesDir, PROFILES_FILE), profile.yaml, { mode: 0o600 });
  const record = newRecord(request, checkedOut.checkout, context.dbtProject, profile, base);
  const readsFrom = carriedReads(readBuildRecord(paths.buildRecord));
  if (readsFrom) record.readsFrom = readsFrom;
  noteDeadPredecessor(record, paths, reporter);
  keepPromotion(record, paths.buildRecord);
  const rebuild = promotedRebuild(context, record);
  const retirement = await planRebuild(rebuild);
  writeBuildRecord(paths.buildRecord, record);
  try {
    const strict = request.strictIsolation ? strictIsolationOf(context, dbt) : undefined;
    const userEnv = dbtEnvironment(request.env);
    const env = strict?.environment(userEnv) ?? userEnv;
    const { projectDir, workingProjectDir } = checkedOut;
    const locations = {
      projectDir,
      profilesDir: paths.profilesDir,
      target: profile.target,
      targetPath: paths.targetPath,
      logPath: paths.logPath,
    };
    if (declaresPackages(projectDir)) {
      enterPhase(record, paths, 'deps');
      await installPackages(dbt, checkedOut.checkout, paths, request, locations, env, reporter);
    }
    enterPhase(record, paths, 'dbt');
    rmSync(join(paths.targetPath, 'run_results.json'), { force: true });
    // Relative paths in the profile (a templated DuckDB path, dbt-duckdb's external_root) resolve
    // against the working directory, so run where the user's own dbt would run: the project folder.
    const cwd = existsSync(workingProjectDir) ? workingProjectDir : projectDir;
    const selection = base ? slimSelection(request.selection, base) : request.selection;
    if (base) {
      reporter.info(
        `• slim build: ${selection.select!.join(' ')} against ${base.commit.slice(0, 12)} (${base.ref}), deferring to schema ${base.schema}`,
      );
    }
    // dbt parses, the plugin checks the manifest, then dbt runs the command: one line each.
    const clock = { started: 0, parsed: 0 };
    const run = {
      parseArgs: dbtArgs('parse', locations, { vars: request.selection.vars }),
      commandArgs: dbtArgs(request.command, locations, selection),
      check: async () => {
        clock.parsed = Date.now();
        reporter.info(`• dbt parse (${secondsSince(clock.started)})`);
        checkIsolation(paths, profile, request, reporter);
        await strict?.prepare(join(paths.targetPath, 'manifest.json'), base && join(base.statePath, 'manifest.json'));
      },
      hold: buildHold(record, request.workspaceRoot, reporter, strict?.holdEnd(userEnv)),
    };
    const logMark = dbtLogMark(paths.logPath);
    const exit = await keepingPromotedViews(
      rebuild,
      retirement,
      () =>
        withWarehouseLock(request.workspaceRoot, profile.warehouse, reporter, () => {
          clock.started = Date.now();
          return releasingRole(strict, reporter, () => runDbtParsedFirst(requirePythonDbt(dbt), run, cwd, env));
        }),
      (ran) => ran.parsed && !ran.interrupted && ran.code === 0,
    );
    const into = writesNoRelation(request.command) ? 'wrote no relation' : `into schema ${profile.schema}`;
    reporter.info(`• dbt ${request.command} ${into} (${secondsSince(clock.parsed || clock.started)})`);
    const failure = { profilesFile: profilesFileFor(request), dbtTarget: profile.target, ref: request.ref };
    const cause =
      exit.code === 0 || exit.interrupted ? undefined : knownDbtFailure(dbtLogSince(paths.logPath, logMark), failure);
    if (cause && !exit.parsed) throw cause;
    if (!exit.parsed && !exit.interrupted) {
      throw new UserError(
        `dbt parse failed (see its output above): fix the project at ${request.ref}, or pick another ref.`,
      );
    }
    finishRecord(record, paths, exit, writeOptions(request));
    if (cause) throw cause;
    if (record.status === 'succeeded' && request.expectedKey !== undefined) keepForCache(context, record);
  } catch (error) {
    record.status = error instanceof BuildInterrupted ? 'interrupted' : 'failed';
    record.error = errorMessage(error);
    throw error;
  } finally {
    record.endedAt = new Date().toISOString();
    delete record.phase;
    writeBuildRecord(paths.buildRecord, record);
    writeBuildSummary(paths, buildSummary(request.workspaceRoot, paths, record));
  }
  return { success: record.status === 'succeeded', record, paths };
}

/** What planRebuild and keepingPromotedViews need to keep the views reading this build answering while dbt replaces it. */
function promotedRebuild(context: BuildContext, record: BuildRecord): PromotedRebuild {
  const { request, paths, profile } = context;
  return {
    connection: {
      workspaceRoot: request.workspaceRoot,
      dbt: context.dbt,
      profilesDir: paths.profilesDir,
      profile: record.profile!,
      target: profile.target,
      env: request.env,
    },
    warehouseType: profile.warehouse.type,
    command: request.command,
    build: { schema: profile.schema, buildId: record.buildId },
    partial: record.contents!.partialBecause,
    fullCommand: fullBuildCommand(request),
    promoteCommand: promoteCommand(request),
    rebuilt: { record, paths },
    reporter: context.reporter,
    now: () => new Date(),
  };
}

function fullBuildCommand(request: IsolatedBuildRequest): string {
  return `nx run ${request.project}:${request.targetName} --ref=${request.ref}`;
}

function promoteCommand(request: IsolatedBuildRequest): string {
  return `nx run ${request.project}:${request.promoteTarget}`;
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

function strictIsolationOf({ request, reporter, dbtProject, profile, paths }: BuildContext, dbt: string) {
  const connection = {
    ...request,
    dbt,
    profilesDir: paths.profilesDir,
    profile: dbtProject.profile!,
    target: profile.target,
  };
  return strictIsolation({ profile, connection, exceptions: request.isolationExceptions ?? [], reporter });
}

function enterPhase(record: BuildRecord, paths: BuildPaths, phase: BuildPhase): void {
  record.phase = phase;
  writeBuildRecord(paths.buildRecord, record);
}

/**
 * Refuses the build when a node of the parsed manifest would create or change a relation outside
 * `<schema>_<id>` or the target's database. Runs between dbt's parse and its command, so before
 * any SQL.
 */
function checkIsolation(
  paths: BuildPaths,
  profile: IsolatedProfile,
  request: IsolatedBuildRequest,
  reporter: Reporter,
) {
  if (writesNoRelation(request.command)) {
    reporter.info(`• isolation check: not needed, dbt ${request.command} writes no relation`);
    return;
  }
  const bounds = { schema: profile.schema, database: profile.database, exceptions: request.isolationExceptions ?? [] };
  const escaping = escapingNodes(join(paths.targetPath, 'manifest.json'), bounds, writeOptions(request));
  if (escaping.length > 0) throw escapeError(escaping, bounds);
  reporter.info(`• isolation check: every relation stays in ${profile.schema} or ${profile.schema}_*`);
}

/** The commit `deferTo` names, which must differ from the one being built. */
async function deferralCommit(request: IsolatedBuildRequest, checkedOut: ProjectCheckout): Promise<string | undefined> {
  if (request.deferTo === undefined) return undefined;
  const commit = await resolveCommit(checkedOut.repoRoot, request.deferTo);
  if (commit === checkedOut.commit) {
    throw new UserError(
      `--deferTo=${request.deferTo} names the commit being built (${commit.slice(0, 12)}), so a slim build would build nothing: defer to an older commit, such as your base branch.`,
    );
  }
  return commit;
}

function deferralBase(request: IsolatedBuildRequest, commit: string, dbtTarget: string): Promise<DeferralBase> {
  return findDeferralBase({
    workspaceRoot: request.workspaceRoot,
    project: request.project,
    targetName: request.targetName,
    dbtTarget,
    ref: request.deferTo!,
    commit,
    build: request.buildBase,
  });
}

function keyRequest(request: IsolatedBuildRequest, commit: string, profile: string, deferTo?: string) {
  const dbtTarget = dbtTargetFor(request.target, request.env);
  return { ...request, commit, profile, dbtTarget, deferTo, exclude: request.selection.exclude };
}

function keyOf(request: IsolatedBuildRequest, commit: string, profile: string, deferTo?: string): string {
  return buildKey(keyRequest(request, commit, profile, deferTo));
}

function verifyKey(request: IsolatedBuildRequest, commit: string, profile: string, deferTo?: string): void {
  const keyed = keyRequest(request, commit, profile, deferTo);
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
function keepForCache(
  { request, paths, profile, checkedOut, dbtProject, baseCommit }: BuildContext,
  record: BuildRecord,
) {
  const file = duckDbFile(profile.warehouse);
  if (file) rememberDuckDbFile(request.workspaceRoot, file);
  if (request.rebuild) {
    record.key = keyOf(request, checkedOut.commit, dbtProject.profile!, baseCommit);
    return;
  }
  stageArtifacts(request.workspaceRoot, paths, record, request.expectedKey!, request.runId);
}

interface ProjectCheckout {
  repoRoot: string;
  commit: string;
  checkout: LeasedCheckout;
  /** The project's folder in the checkout. */
  projectDir: string;
  workingProjectDir: string;
}

/** Resolves the ref and returns the project's folder in a valid checkout of that commit. */
async function checkoutProject(request: IsolatedBuildRequest, reporter: Reporter): Promise<ProjectCheckout> {
  const { workspaceRoot } = request;
  const repoRoot = await repositoryRoot(workspaceRoot);
  const commit = await timed(reporter, `resolve ref ${request.ref}`, () => resolveCommit(repoRoot, request.ref));
  ensureDotFolder(workspaceRoot);
  // git names the repository by its real path; the workspace root may be reached through a link.
  const inRepository = (path: string) => relative(repoRoot, join(realpathSync(workspaceRoot), path));
  const projectPath = inRepository(request.projectRoot);
  const scope = await folderScope(request, repoRoot, commit, projectPath, inRepository);
  for (const line of await removeUnrecordedCheckouts(repoRoot, workspaceRoot, commit)) reporter.info(`• ${line}`);
  if (scope.fullBecause) reporter.info(`• checking out every file: ${scope.fullBecause}`);
  const checkout = await timed(reporter, `checkout ${commit.slice(0, 12)} (${describeFolders(scope.folders)})`, () =>
    ensureCheckout(repoRoot, workspaceRoot, commit, {
      holder: request.project,
      folders: scope.folders,
      onWait: (holder) =>
        reporter.info(
          `waiting for another build or clean of this commit to finish with its checkout${ifStopped(holder)}`,
        ),
    }),
  );
  const workingProjectDir = join(workspaceRoot, request.projectRoot);
  const projectDir = join(checkout.worktree, projectPath);
  if (!existsSync(join(projectDir, DBT_PROJECT_FILE))) {
    await checkout.release();
    await refuseSubmodule(request, repoRoot, commit, projectPath);
    throw new UserError(
      `${request.projectRoot}/${DBT_PROJECT_FILE} does not exist at ${request.ref} (${commit.slice(0, 12)}): the project was added later or moved; pick a ref that has it.`,
    );
  }
  return { repoRoot, commit, checkout, projectDir, workingProjectDir };
}

async function refuseSubmodule(request: IsolatedBuildRequest, repoRoot: string, commit: string, projectPath: string) {
  const submodule = await submoduleHolding(repoRoot, commit, projectPath);
  if (submodule === undefined) return;
  throw new UserError(
    `${request.projectRoot} is inside git submodule ${submodule} at ${request.ref} (${commit.slice(0, 12)}), and isolated builds check out only the repository's own files, not submodules: build it from the submodule's own repository (an Nx workspace there), or make the project part of this repository.`,
  );
}

function folderScope(
  request: IsolatedBuildRequest,
  repoRoot: string,
  commit: string,
  projectPath: string,
  inRepository: (path: string) => string,
): Promise<CheckoutScope> {
  if (request.sparseCheckout === false) return Promise.resolve({ folders: 'all' });
  return checkoutScope(repoRoot, commit, projectPath, (request.checkoutFolders ?? []).map(inRepository));
}

function describeFolders(folders: CheckoutFolders): string {
  return folders === 'all' ? 'every file' : `sparse: ${folders.join(', ')}`;
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

function isolatedProfileFor(
  request: IsolatedBuildRequest,
  profileName: string,
  buildId: string,
  workingProjectDir: string,
): IsolatedProfile {
  const file = profilesFileFor(request);
  return isolateProfile({
    text: readFileSync(file, 'utf8'),
    file,
    profile: profileName,
    target: dbtTargetFor(request.target, request.env),
    suffix: buildId,
    projectDir: workingProjectDir,
    env: request.env,
  });
}

/**
 * Runs `dbt deps` once per checkout and project: the checkout never changes, so a marker
 * naming the checkout it was made for is enough to skip it next time.
 */
async function installPackages(
  dbt: string,
  checkout: Checkout,
  paths: BuildPaths,
  { workspaceRoot, project }: IsolatedBuildRequest,
  locations: { projectDir: string; profilesDir: string; logPath: string },
  env: NodeJS.ProcessEnv,
  reporter: Reporter,
): Promise<void> {
  const marker = join(paths.projectDir, 'deps.json');
  const isCurrent = () => readJson<DepsMarker>(marker)?.checkoutCreatedAt === checkout.createdAt;
  await withLock(locksDir(workspaceRoot), `deps-${checkout.buildId}-${project}`, async () => {
    if (isCurrent()) return;
    const exit = await timed(reporter, 'dbt deps', () => runDbt(dbt, depsArgs(locations), locations.projectDir, env));
    if (exit.interrupted) throw new BuildInterrupted('dbt deps');
    if (exit.code !== 0) {
      throw new UserError(
        `dbt deps failed in ${locations.projectDir} (see its output above): fix packages.yml at this commit.`,
      );
    }
    writeJsonAtomically(marker, { checkoutCreatedAt: checkout.createdAt } satisfies DepsMarker);
  });
}

interface DepsMarker {
  checkoutCreatedAt: string;
}

function writeOptions(request: IsolatedBuildRequest): WriteOptions {
  return { allTestFailures: storesAllTestFailures(request.selection.extraArgs, request.env) };
}

function finishRecord(record: BuildRecord, paths: BuildPaths, exit: DbtExit, writes: WriteOptions): void {
  record.results = summarizeRunResults(join(paths.targetPath, 'run_results.json'));
  record.schemas = schemasInManifest(join(paths.targetPath, 'manifest.json'), writes);
  if (exit.interrupted) {
    record.status = 'interrupted';
    record.error = new BuildInterrupted(`dbt ${record.command}`).message;
  } else if (exit.code === 0) {
    record.status = 'succeeded';
    // Every relation is now this build's own: what earlier slim builds read is read no more.
    if (record.contents?.complete) delete record.readsFrom;
  } else {
    record.status = 'failed';
    record.error = `dbt ${record.command} exited with ${exit.code ?? exit.signal}`;
  }
}

async function timed<T>(reporter: Reporter, phase: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await work();
  reporter.info(`• ${phase} (${secondsSince(started)})`);
  return result;
}

function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)}s`;
}
