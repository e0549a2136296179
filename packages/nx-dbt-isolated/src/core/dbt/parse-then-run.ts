import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { startForwardingSignals, type DbtExit } from './process';

export interface ParsedRun {
  /** `parse` with the build's locations. */
  parseArgs: string[];
  /** The dbt command to run on that parse. */
  commandArgs: string[];
  /** Called once dbt has parsed and written the manifest: throws (or rejects) to stop before the command runs. */
  check(): void | Promise<void>;
  /** Given to parse-then-run.py before the parse arguments (see warehouse/claims.ts). */
  hold?: { args: string[]; onWait(): void };
}

/**
 * What a build's hold (see parse-then-run.py) runs at its end, under its lock, whatever happened:
 * strictIsolation's role is ended there, before a build waiting for the lock makes its own.
 */
export interface HoldEnd {
  atEnd: string[];
  /** Said when `atEnd` fails. */
  atEndFailure: string;
  /** PGOPTIONS for the hold's own session (the command's carry the build's role, not yet made). */
  sessionPgOptions?: string;
}

export interface ParsedRunExit extends DbtExit {
  /** False when dbt stopped while parsing. */
  parsed: boolean;
  /** The hold ran its `atEnd` statements (see parse-then-run.py). */
  ended: boolean;
}

const PARSE_THEN_RUN = join(__dirname, 'parse-then-run.py');

/**
 * Runs `dbt parse`, then `check`, then the dbt command on the manifest `check` read, in one Python
 * process (parse-then-run.py), so the command cannot run on another parse than the one checked.
 * A `check` that throws stops dbt and rethrows. `python` is the dbt's own (see requirePythonDbt).
 */
export async function runDbtParsedFirst(
  python: string,
  run: ParsedRun,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ParsedRunExit> {
  const { child, exited } = startForwardingSignals(
    python,
    [PARSE_THEN_RUN, ...(run.hold?.args ?? []), ...run.parseArgs, '--then', ...run.commandArgs],
    {
      cwd,
      env,
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    },
  );
  if (!child) return { ...(await exited), parsed: false, ended: false };
  const channel = child.stdio[3] as Duplex;
  let parsed = false;
  let ended = false;
  let refusal: unknown;
  let checked: Promise<unknown> | undefined;
  channel.on('data', (chunk: Buffer) => {
    const lines = chunk.toString('utf8');
    if (lines.includes('waiting')) run.hold?.onWait();
    if (lines.includes('ended')) ended = true;
    if (parsed || !lines.includes('parsed')) return;
    parsed = true;
    checked = Promise.resolve()
      .then(() => run.check())
      .then(
        () => channel.write('go\n'),
        (error: unknown) => {
          refusal = error;
          channel.write('stop\n');
        },
      );
  });
  channel.on('error', () => undefined);
  const exit = await exited;
  // dbt may have been stopped while an asynchronous check still ran: let it finish first.
  await checked;
  if (refusal !== undefined) throw refusal;
  return { ...exit, parsed, ended };
}
