import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { dbtArgs, refusePluginOwnedArgs, type DbtLocations } from '../dbt/args';
import { findDbt, requirePythonDbt } from '../dbt/executable';
import { dbtLogMark, dbtLogSince, knownDbtFailure, parseFailed } from '../dbt/failure';
import { runDbtParsedFirst, type ParsedRunExit } from '../dbt/parse-then-run';
import { dbtEnvironment } from '../dbt/process';
import { readProfilesFile, sameWarehouse, writeGeneratedProfile, type IsolatedProfile } from '../dbt/profiles';
import { existingFullBuild, findFullBuild, type BuildCommit } from '../build/full-build';
import { buildLockName, type RecordedBuild } from '../build/records';
import { checkoutProject, dbtWorkingDir, type CheckoutRequest, type ProjectCheckout } from '../build/steps/checkout';
import { adapterFor } from '../dbt/adapters';
import { startWithPackages } from '../build/steps/deps';
import { isolatedProfileFor, projectAtCommit, type ProfiledProject } from '../build/steps/profile';
import { phaseEnded, phaseStarting } from '../build/steps/timing';
import { withWarehouseLock } from '../warehouse/duckdb-lock';
import { releasingRole, strictIsolation, type StrictIsolation } from '../warehouse/strict-isolation';
import { buildPaths, locksDir, type BuildPaths } from '../workspace/dot-layout';
import { BuildInterrupted, UserError } from '../workspace/errors';
import { ifStopped, withLock } from '../workspace/lock';
import type { Reporter } from '../workspace/reporter';
import { stoppingGracefully } from '../workspace/stop';
import {
  commandFolderName,
  commandRules,
  commitCommandArgs,
  refuseMisusedOptions,
  type CommitCommandArgs,
} from './commit-commands';

export interface CommitCommandRequest extends CheckoutRequest, CommitCommandArgs {
  /** The dbt target; DBT_TARGET, then the profile's default, when absent. */
  target?: string;
  /** Relative to the workspace root. */
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
  /** The project's isolated-build target, for messages and for building a missing build. */
  targetName: string;
  /** run-operation: run the macro as a role that may create only in the build's schemas (PostgreSQL). */
  strictIsolation?: boolean;
  /** Builds the commit in full when a command that reads its relations finds no build. */
  build?: BuildCommit;
}

/** Where a command ran at a commit, for what comes after it (serving docs) while the checkout is held. */
export interface CommandAtCommit {
  commit: string;
  schema: string;
  /** The command's own artifacts: `.dot/<short_hash>/<project>/<dbt target>/commands/<command>/target`. */
  targetPath: string;
  locations: DbtLocations;
  checkedOut: ProjectCheckout;
}

/**
 * Runs a dbt command (ls, show, source freshness, docs generate, run-operation) on a commit's
 * isolated build: in a checkout of the commit, with the build's isolated profile, so that every
 * ref() names the build's schema. It writes its artifacts to a folder of its own, and copies the
 * ones that belong beside the build's (catalog.json, sources.json) there; the build's record is
 * left as it is. `then` runs while the checkout is still held.
 */
export async function runAtCommit(
  request: CommitCommandRequest,
  reporter: Reporter,
  then?: (ran: CommandAtCommit) => Promise<void>,
): Promise<CommandAtCommit> {
  refuseMisusedOptions(request);
  refusePluginOwnedArgs(request.selection.extraArgs);
  if (request.command === 'run-operation' && !request.strictIsolation) refuseUncontainedOperation(request);
  const dbt = findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH);
  requirePythonDbt(dbt);
  return stoppingGracefully(async () => {
    const checkedOut = await checkoutProject(request, reporter);
    try {
      const ran = await runInCheckout(request, reporter, dbt, checkedOut);
      await then?.(ran);
      return ran;
    } finally {
      await checkedOut.checkout.release();
    }
  });
}

interface CommandContext {
  request: CommitCommandRequest;
  reporter: Reporter;
  dbt: string;
  checkedOut: ProjectCheckout;
  dbtProject: ProfiledProject;
  profile: IsolatedProfile;
  paths: BuildPaths;
  build?: RecordedBuild;
  locations: DbtLocations;
}

async function runInCheckout(
  request: CommitCommandRequest,
  reporter: Reporter,
  dbt: string,
  checkedOut: ProjectCheckout,
): Promise<CommandAtCommit> {
  const dbtProject = projectAtCommit(request, checkedOut);
  const { buildId } = checkedOut.checkout;
  const profile = isolatedProfileFor(
    request,
    readProfilesFile(request),
    dbtProject.profile,
    buildId,
    checkedOut.workingProjectDir,
  );
  if (request.command === 'run-operation' && !adapterFor(profile.warehouse.type).rolesAndClaims) {
    throw new UserError(
      `run-operation runs under strictIsolation, which the plugin can do on PostgreSQL only, and dbt target ${profile.target} is ${profile.warehouse.type}: run the macro with dbt against your own development schema, outside the plugin.`,
    );
  }
  const build = commandRules(request.command).readsBuild
    ? await fullBuildOf(request, checkedOut.commit, profile)
    : existingFullBuild({ ...request, dbtTarget: profile.target, commit: checkedOut.commit });
  const paths = buildPaths(request.workspaceRoot, buildId, request.project, profile.target);
  const commandDir = join(paths.commandsDir, commandFolderName(request.command));
  const locations: DbtLocations = {
    projectDir: checkedOut.projectDir,
    profilesDir: join(commandDir, 'profiles'),
    target: profile.target,
    targetPath: join(commandDir, 'target'),
    logPath: join(commandDir, 'logs'),
  };
  const context: CommandContext = { request, reporter, dbt, checkedOut, dbtProject, profile, paths, build, locations };
  // A build of this commit, project and target would rewrite the schemas and folder the command reads.
  return withLock(
    locksDir(request.workspaceRoot),
    buildLockName(checkedOut.commit, request.project, profile.target),
    () => runCommand(context),
    {
      onWait: (holder) =>
        reporter.info(`waiting for a build of ${request.project} at this commit to finish${ifStopped(holder)}`),
    },
  );
}

/** The commit's full build, made through Nx when missing; its schema must be the one the profile names now. */
async function fullBuildOf(request: CommitCommandRequest, commit: string, profile: IsolatedProfile) {
  const build = await findFullBuild({
    ...request,
    dbtTarget: profile.target,
    commit,
    purpose: `to run dbt ${request.command} on`,
  });
  if (build.record.schema !== profile.schema || !sameWarehouse(build.record.warehouse, profile.warehouse)) {
    const profilesDir = request.profilesDir === undefined ? '' : ` --profilesDir=${request.profilesDir}`;
    const rebuild = `nx run ${request.project}:${request.targetName} --ref=${request.ref} --skip-nx-cache${profilesDir}`;
    throw new UserError(
      `the isolated build of ${request.project} at ${request.ref} is in ${build.record.schema} (${build.record.warehouse.location}), but dbt target ${profile.target} of the profiles.yml this command reads points at ${profile.schema} (${profile.warehouse.location}): build the commit with that profile (${rebuild}), then run this again.`,
    );
  }
  return build;
}

async function runCommand(context: CommandContext): Promise<CommandAtCommit> {
  const { request, reporter, checkedOut, profile, locations, build, paths } = context;
  writeGeneratedProfile(locations, profile.yaml);
  seedPartialParse(paths, locations);
  const logMark = dbtLogMark(locations.logPath);
  const exit = await dbtCommandRun(context);
  const cause =
    exit.code === 0 || exit.interrupted
      ? undefined
      : knownDbtFailure(dbtLogSince(locations.logPath, logMark), {
          profilesFile: readProfilesFile(request).file,
          dbtTarget: profile.target,
          ref: request.ref,
        });
  if (cause) throw cause;
  if (exit.interrupted) throw new BuildInterrupted(`dbt ${request.command}`);
  if (!exit.parsed) throw parseFailed(request.ref);
  if (exit.code !== 0) {
    throw new UserError(
      `dbt ${request.command} failed at ${request.ref} (${checkedOut.commit.slice(0, 12)}), exit code ${exit.code}: its output is above.`,
    );
  }
  for (const file of build ? keepBesideBuild(context) : []) {
    reporter.info(`• ${file} kept beside the build's artifacts (${relative(request.workspaceRoot, paths.targetPath)})`);
  }
  return { commit: checkedOut.commit, schema: profile.schema, targetPath: locations.targetPath, locations, checkedOut };
}

/** dbt deps when the checkout needs them, its parse, then the command, in one dbt process. */
async function dbtCommandRun(context: CommandContext): Promise<ParsedRunExit> {
  const { request, reporter, dbt, checkedOut, profile, locations } = context;
  const strict = request.command === 'run-operation' && request.strictIsolation ? strictOf(context) : undefined;
  const userEnv = dbtEnvironment(request.env);
  const env = strict?.environment(userEnv) ?? userEnv;
  const cwd = dbtWorkingDir(checkedOut);
  const what = `dbt ${request.command}`;
  let started = 0;
  const ran = await releasingRole(strict, reporter, () =>
    startWithPackages(
      context,
      () => undefined,
      locations,
      (deps) =>
        runDbtParsedFirst(
          requirePythonDbt(dbt),
          {
            deps,
            parseArgs: dbtArgs('parse', locations, { vars: request.selection.vars }),
            commandArgs: commitCommandArgs(request, locations),
            check: () => strict?.prepare(join(locations.targetPath, 'manifest.json')),
            commandLock: (command, exited) => {
              const start = () => {
                started = Date.now();
                reporter.info(phaseStarting(`${what} on schema ${profile.schema}`));
                return command();
              };
              if (!commandRules(request.command).opensWarehouse) return start();
              return withWarehouseLock(request.workspaceRoot, profile.warehouse, reporter, start, exited);
            },
          },
          cwd,
          env,
        ),
    ),
  );
  if (started) reporter.info(phaseEnded(what, started));
  return ran;
}

function strictOf({ request, reporter, dbt, dbtProject, profile, locations }: CommandContext): StrictIsolation {
  const connection = {
    workspaceRoot: request.workspaceRoot,
    dbt,
    profilesDir: locations.profilesDir,
    profile: dbtProject.profile,
    target: profile.target,
    env: request.env,
  };
  return strictIsolation({ profile, connection, exceptions: [], reporter });
}

/**
 * The build parsed the same checkout with the same profile: starting from its saved parse spares
 * the command a full parse (dbt checks the saved one still fits, and parses in full when not).
 */
function seedPartialParse(paths: BuildPaths, locations: DbtLocations): void {
  const saved = join(paths.targetPath, PARTIAL_PARSE_FILE);
  const own = join(locations.targetPath, PARTIAL_PARSE_FILE);
  if (!existsSync(saved) || existsSync(own)) return;
  mkdirSync(locations.targetPath, { recursive: true });
  copyFileSync(saved, own);
}

const PARTIAL_PARSE_FILE = 'partial_parse.msgpack';

/**
 * Copies the command's artifacts that describe the build (its catalog, its sources' freshness)
 * beside the build's, when they describe all of it: a selection or other vars describe another.
 */
function keepBesideBuild({ request, locations, paths }: CommandContext): string[] {
  const { select, exclude, selector, vars } = request.selection;
  if (select?.length || exclude?.length || selector || vars) return [];
  const kept: string[] = [];
  for (const file of commandRules(request.command).keeps) {
    const written = join(locations.targetPath, file);
    if (!existsSync(written)) continue;
    copyFileSync(written, join(paths.targetPath, file));
    kept.push(file);
  }
  return kept;
}

function refuseUncontainedOperation(request: CommitCommandRequest): never {
  throw new UserError(
    `run-operation runs ${request.macro ?? 'a macro'}'s SQL, which the isolation check cannot read before it runs: add --strictIsolation (PostgreSQL), which runs it as a role that may create only in the build's schemas, or run the macro with dbt outside the plugin.`,
  );
}
