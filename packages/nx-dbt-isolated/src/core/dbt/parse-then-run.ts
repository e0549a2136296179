import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { hostedScriptArgs } from './host';
import { startForwardingSignals, type DbtExit } from './process';

export interface ParsedRun {
  /** `dbt deps` first, when the checkout's packages are not installed yet: `installed` is called once they are. */
  deps?: { args: string[]; installed(): void };
  /** `parse` with the build's locations. */
  parseArgs: string[];
  /** The dbt command to run on that parse. */
  commandArgs: string[];
  /** Called once dbt has parsed and written the manifest: throws (or rejects) to stop before the command runs. */
  check(): void | Promise<void>;
  /**
   * Wraps what follows a passed check, the command until dbt exits: the lock the command needs
   * (DuckDB's writer lock) is taken there, so dbt's start-up, deps and parse need not wait for it.
   * `exited` turns true if dbt ends while the lock is awaited: the wait should end then.
   * `command` takes arguments to add to the command's, known only under that lock.
   */
  commandLock?<T>(command: (moreArgs?: string[]) => Promise<T>, exited: () => boolean): Promise<T>;
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
  /** dbt deps ran and installed the packages. */
  installed: boolean;
  /** False when dbt stopped while installing packages or parsing. */
  parsed: boolean;
  /** The hold ran its `atEnd` statements (see parse-then-run.py). */
  ended: boolean;
}

const PARSE_THEN_RUN = join(__dirname, 'parse-then-run.py');

/**
 * Runs `dbt deps` when asked, `dbt parse`, then `check`, then the dbt command on the manifest
 * `check` read, in one Python process (parse-then-run.py), so the command cannot run on another
 * parse than the one checked; a child of the dbt host once one listens (host.ts). A `check` (or
 * `commandLock`) that throws stops dbt and rethrows. `python` is the dbt's own (see requirePythonDbt).
 */
export async function runDbtParsedFirst(
  python: string,
  run: ParsedRun,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<ParsedRunExit> {
  const hosted = hostedScriptArgs(python, env) ?? [];
  const { child, exited } = startForwardingSignals(python, [...hosted, ...parseThenRunArgs(run)], {
    cwd,
    env,
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  if (!child) return { ...(await exited), installed: false, parsed: false, ended: false };
  const channel = child.stdio[3] as Duplex;
  const seen = { installed: false, parsed: false, ended: false };
  let refusal: unknown;
  let checked: Promise<unknown> | undefined;
  const commandLock = run.commandLock ?? ((command: () => Promise<DbtExit>) => command());
  let hasExited = false;
  const refuse = (error: unknown) => {
    // Once dbt has ended by itself, its exit says what happened; a lock given up on says nothing.
    if (!hasExited) refusal = error;
    channel.write('stop\n');
  };
  const onLine = (line: string) => {
    if (line === 'installed') {
      seen.installed = true;
      run.deps?.installed();
    } else if (line === 'waiting') run.hold?.onWait();
    else if (line === 'ended') seen.ended = true;
    else if (line === 'parsed' && !seen.parsed) {
      seen.parsed = true;
      checked = Promise.resolve()
        .then(() => run.check())
        .then(() =>
          commandLock(
            (moreArgs: string[] = []) => {
              channel.write(moreArgs.length > 0 ? `go ${JSON.stringify(moreArgs)}\n` : 'go\n');
              return exited;
            },
            () => hasExited,
          ),
        )
        .catch(refuse);
    }
  };
  let pending = '';
  channel.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n');
    pending = lines.pop()!;
    try {
      lines.forEach((line) => onLine(line.trim()));
    } catch (error) {
      refuse(error);
    }
  });
  channel.on('error', () => undefined);
  const exit = await exited;
  hasExited = true;
  // dbt may have been stopped while an asynchronous check still ran: let it finish first.
  await checked;
  if (refusal !== undefined) throw refusal;
  return { ...exit, ...seen };
}

function parseThenRunArgs(run: ParsedRun): string[] {
  return [
    PARSE_THEN_RUN,
    ...(run.deps ? ['--deps', JSON.stringify(run.deps.args)] : []),
    ...(run.hold?.args ?? []),
    ...run.parseArgs,
    '--then',
    ...run.commandArgs,
  ];
}
