import { existsSync, readFileSync, rmSync } from 'node:fs';
import { parse } from 'yaml';
import { join } from 'node:path';
import { dbtArgs, type DbtSelection } from '../../dbt/args';
import { requirePythonDbt } from '../../dbt/executable';
import { readManifestResources } from '../../dbt/artifacts';
import { dbtLogMark, dbtLogSince, knownDbtFailure } from '../../dbt/failure';
import { runDbtParsedFirst, type ParsedRun, type ParsedRunExit } from '../../dbt/parse-then-run';
import { keepingPromotedViews } from '../../promote/rebuild';
import { buildHold } from '../../warehouse/claims';
import { withWarehouseLock } from '../../warehouse/duckdb-lock';
import { quoteLiteral, runQueries } from '../../warehouse/sql';
import { releasingRole } from '../../warehouse/strict-isolation';
import { UserError } from '../../workspace/errors';
import { writesNoRelation } from '../contents';
import { escapeError, escapingNodes } from '../guard';
import { excludeLoadedSeeds, sharedSeeds, type SharedSeed } from '../shared-schemas';
import type { BuildRecord } from '../records';
import { slimSelection } from '../slim';
import { buildConnection, writeOptions, type BuildContext } from './context';
import { startWithPackages, type PackagesToInstall } from './deps';
import type { DbtRunEnvironment } from './environment';
import type { PromotedViews } from './promoted-views';
import { finishRecord } from './record';
import { phaseEnded, phaseStarting } from './timing';

/** When dbt's process started and reached each step: each step reports its own duration. */
interface Clock {
  started: number;
  installed: number;
  parsed: number;
  commandStarted: number;
}

/**
 * dbt's deps when the checkout needs them, its parse, the isolation check, then dbt's command
 * under the warehouse's lock, with the promoted views kept answering; the record says how dbt ended. Throws what stopped the build.
 */
export async function guardedDbtRun(
  context: BuildContext,
  record: BuildRecord,
  environment: DbtRunEnvironment,
  views: PromotedViews,
): Promise<void> {
  const { reporter, dbt, checkedOut, paths } = context;
  const { projectDir, workingProjectDir } = checkedOut;
  rmSync(join(paths.targetPath, 'run_results.json'), { force: true });
  // Relative paths in the profile (a templated DuckDB path, dbt-duckdb's external_root) resolve
  // against the working directory, so run where the user's own dbt would run: the project folder.
  const cwd = existsSync(workingProjectDir) ? workingProjectDir : projectDir;
  // dbt installs packages, parses, the plugin checks the manifest, then dbt runs the command: one line each.
  const clock: Clock = { started: 0, installed: 0, parsed: 0, commandStarted: 0 };
  const run = parsedRun(context, record, environment, clock);
  const logMark = dbtLogMark(paths.logPath);
  const exit = await keepingPromotedViews(
    views.rebuild,
    views.retirement,
    () =>
      releasingRole(environment.strict, reporter, () =>
        startWithPackages(context, record, environment.locations, (deps) => {
          clock.started = Date.now();
          if (!deps) reporter.info(phaseStarting('dbt parse'));
          const python = requirePythonDbt(dbt);
          return runDbtParsedFirst(
            python,
            { ...run, deps: deps && stampingInstalled(deps, clock, reporter) },
            cwd,
            environment.env,
          );
        }),
      ),
    (ran) => ran.parsed && !ran.interrupted && ran.code === 0,
  );
  reporter.info(phaseEnded(commandPhase(context, 'ended'), clock.commandStarted || clock.started));
  settle(context, record, exit, logMark);
}

/** `deps` that also notes when they were installed: the parse's line counts from there. */
function stampingInstalled(
  deps: NonNullable<PackagesToInstall>,
  clock: Clock,
  reporter: BuildContext['reporter'],
): PackagesToInstall {
  return {
    args: deps.args,
    installed: () => {
      clock.installed = Date.now();
      deps.installed();
      reporter.info(phaseStarting('dbt parse'));
    },
  };
}

function parsedRun(
  context: BuildContext,
  record: BuildRecord,
  { locations, strict, userEnv }: DbtRunEnvironment,
  clock: Clock,
): ParsedRun {
  const { request, reporter, paths, base, profile } = context;
  return {
    parseArgs: dbtArgs('parse', locations, { vars: request.selection.vars }),
    commandArgs: dbtArgs(request.command, locations, selectionOf(context)),
    check: async () => {
      clock.parsed = Date.now();
      reporter.info(phaseEnded('dbt parse', clock.installed || clock.started));
      checkIsolation(context);
      await strict?.prepare(join(paths.targetPath, 'manifest.json'), base && join(base.statePath, 'manifest.json'));
    },
    // dbt's start-up, deps and parse open no warehouse connection: only the command waits for DuckDB's writer lock.
    commandLock: (command, exited) =>
      withWarehouseLock(
        request.workspaceRoot,
        profile.warehouse,
        reporter,
        async () => {
          const moreArgs = await sharedSeedsToLeaveOut(context);
          clock.commandStarted = Date.now();
          reporter.info(phaseStarting(commandPhase(context, 'starting')));
          return command(moreArgs);
        },
        exited,
      ),
    hold: buildHold(record, request.workspaceRoot, reporter, strict?.holdEnd(userEnv)),
  };
}

/**
 * dbt's arguments that leave out the seeds of shared schemas already loaded there: a shared seed
 * is loaded once, by the first build that finds its relation missing, and no isolated build loads
 * it again (a full refresh would drop it, and on PostgreSQL every view that reads it, with
 * cascade). Asked of the warehouse under its lock, just before the command runs.
 */
async function sharedSeedsToLeaveOut(context: BuildContext): Promise<string[]> {
  const { request, paths, reporter } = context;
  if (!['build', 'seed'].includes(request.command)) return [];
  const seeds = sharedSeeds(
    readManifestResources(join(paths.targetPath, 'manifest.json')) ?? [],
    request.sharedSchemas ?? [],
  );
  if (seeds.length === 0) return [];
  const schemas = [...new Set(seeds.map(({ schema }) => schema))];
  const [tables] = await runQueries(
    buildConnection(context),
    [
      `select table_schema || '.' || table_name as relation from information_schema.tables where table_catalog = current_database() and table_schema in (${schemas.map(quoteLiteral).join(', ')})`,
    ],
    `find which seeds ${schemas.join(', ')} holds already`,
  );
  const { loaded, args } = excludeLoadedSeeds(seeds, new Set(tables.rows.map((row) => String(row[0]))));
  if (loaded.length === 0) return [];
  refuseSelector(context, loaded);
  reporter.info(
    `• shared schemas: ${loaded.map(({ schema, relation }) => `${schema}.${relation}`).join(', ')} loaded already, not loaded again (no isolated build reloads shared data: drop the table, and the next build loads it from its commit)`,
  );
  return args;
}

/** dbt ignores --exclude beside a selector, the project's default one too: the seeds would load again. */
function refuseSelector({ request, checkedOut }: BuildContext, loaded: SharedSeed[]): void {
  const given =
    request.selection.selector ?? (request.selection.extraArgs ?? []).find((arg) => arg.startsWith('--selector'));
  const chosen =
    given ?? (hasDefaultSelector(checkedOut.projectDir) ? 'the default selector of selectors.yml' : undefined);
  if (chosen === undefined) return;
  throw new UserError(
    `sharedSchemas leaves the loaded seeds ${loaded.map(({ uniqueId }) => uniqueId).join(', ')} out with --exclude, which dbt ignores beside a selector (${chosen}), so they would be loaded again: build with --select/--exclude instead, or make the selector exclude them.`,
  );
}

function hasDefaultSelector(projectDir: string): boolean {
  try {
    const selectors = (
      parse(readFileSync(join(projectDir, 'selectors.yml'), 'utf8')) as { selectors?: { default?: unknown }[] }
    )?.selectors;
    return (selectors ?? []).some((selector) => selector?.default !== undefined && selector.default !== false);
  } catch {
    return false;
  }
}

/** `dbt build into schema analytics_1a2b3c4d`; a command that writes no relation says so when it ends. */
function commandPhase({ request, profile }: BuildContext, moment: 'starting' | 'ended'): string {
  if (!writesNoRelation(request.command)) return `dbt ${request.command} into schema ${profile.schema}`;
  return moment === 'ended' ? `dbt ${request.command} wrote no relation` : `dbt ${request.command}`;
}

/** The request's selection, or for a slim build what changed since its base. */
function selectionOf({ request, reporter, base }: BuildContext): DbtSelection {
  if (!base) return request.selection;
  const selection = slimSelection(request.selection, base);
  reporter.info(
    `• slim build: ${selection.select!.join(' ')} against ${base.commit.slice(0, 12)} (${base.ref}), deferring to schema ${base.schema}`,
  );
  return selection;
}

/**
 * Refuses the build when a node of the parsed manifest would create or change a relation outside
 * `<schema>_<id>` or the target's database. Runs between dbt's parse and its command, so before
 * any SQL.
 */
function checkIsolation({ paths, profile, request, reporter }: BuildContext): void {
  if (writesNoRelation(request.command)) {
    reporter.info(`• isolation check: not needed, dbt ${request.command} writes no relation`);
    return;
  }
  const bounds = {
    schema: profile.schema,
    database: profile.database,
    exceptions: request.isolationExceptions ?? [],
    sharedSchemas: request.sharedSchemas ?? [],
  };
  const escaping = escapingNodes(join(paths.targetPath, 'manifest.json'), bounds, writeOptions(request));
  if (escaping.length > 0) throw escapeError(escaping, bounds);
  const shared =
    bounds.sharedSchemas.length > 0 ? `; seeds and snapshots may write to ${bounds.sharedSchemas.join(', ')}` : '';
  reporter.info(`• isolation check: every relation stays in ${profile.schema} or ${profile.schema}_*${shared}`);
}

/**
 * Records how dbt ended; a failure dbt's log explains, or a parse that failed, stops the build
 * with its own words.
 */
function settle(
  { request, paths, profile, keyInputs }: BuildContext,
  record: BuildRecord,
  exit: ParsedRunExit,
  logMark: number,
) {
  const failure = { profilesFile: keyInputs.profiles.file, dbtTarget: profile.target, ref: request.ref };
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
}
