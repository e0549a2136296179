import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { dbtArgs, type DbtSelection } from '../../dbt/args';
import { requirePythonDbt } from '../../dbt/executable';
import { dbtLogMark, dbtLogSince, knownDbtFailure, parseFailed } from '../../dbt/failure';
import { runDbtParsedFirst, type ParsedRun, type ParsedRunExit } from '../../dbt/parse-then-run';
import { keepingPromotedViews } from '../../promote/rebuild';
import { buildHold } from '../../warehouse/claims';
import { withWarehouseLock } from '../../warehouse/duckdb-lock';
import { releasingRole } from '../../warehouse/strict-isolation';
import { writesNoRelation } from '../contents';
import { escapeError, escapingNodes } from '../guard';
import type { BuildRecord } from '../records';
import { slimSelection } from '../slim';
import { writeOptions, type BuildContext } from './context';
import { dbtWorkingDir } from './checkout';
import { startWithPackages, type PackagesToInstall } from './deps';
import type { DbtRunEnvironment } from './environment';
import type { PromotedViews } from './promoted-views';
import { enterPhase, finishRecord } from './record';
import { mergeRetriedResults, readRunResults } from './retry';
import { sharedSeedsToLeaveOut } from './shared-seeds';
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
  // dbt retry reads the results of the build it retries; any other command starts without them.
  const retriedResults = context.request.command === 'retry' ? readRunResults(paths.targetPath) : undefined;
  if (!retriedResults) rmSync(join(paths.targetPath, 'run_results.json'), { force: true });
  const cwd = dbtWorkingDir(checkedOut);
  // dbt installs packages, parses, the plugin checks the manifest, then dbt runs the command: one line each.
  const clock: Clock = { started: 0, installed: 0, parsed: 0, commandStarted: 0 };
  const run = parsedRun(context, record, environment, clock);
  const logMark = dbtLogMark(paths.logPath);
  const exit = await keepingPromotedViews(
    views.rebuild,
    views.retirement,
    () =>
      releasingRole(environment.strict, reporter, () =>
        startWithPackages(
          context,
          (phase) => enterPhase(record, paths, phase),
          environment.locations,
          (deps) => {
            clock.started = Date.now();
            if (!deps) reporter.info(phaseStarting('dbt parse'));
            const python = requirePythonDbt(dbt);
            return runDbtParsedFirst(
              python,
              { ...run, deps: deps && stampingInstalled(deps, clock, reporter) },
              cwd,
              environment.env,
            );
          },
        ),
      ),
    (ran) => ran.parsed && !ran.interrupted && ran.code === 0,
  );
  reporter.info(phaseEnded(commandPhase(context, 'ended'), clock.commandStarted || clock.started));
  if (retriedResults) mergeRetriedResults(paths.targetPath, retriedResults);
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
    throw parseFailed(request.ref);
  }
  finishRecord(record, paths, exit, writeOptions(request));
  if (cause) throw cause;
}
