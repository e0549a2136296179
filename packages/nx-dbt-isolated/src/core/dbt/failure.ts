import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../workspace/errors';

const LOG_FILE = 'dbt.log';

/** Where dbt's log ends now: what a run writes after this is that run's. */
export function dbtLogMark(logPath: string): number {
  try {
    return statSync(join(logPath, LOG_FILE)).size;
  } catch {
    return 0;
  }
}

/** What dbt logged since `mark`. */
export function dbtLogSince(logPath: string, mark: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(join(logPath, LOG_FILE), 'r');
    const size = statSync(join(logPath, LOG_FILE)).size;
    const from = size >= mark ? mark : 0;
    const buffer = Buffer.alloc(size - from);
    readSync(fd, buffer, 0, buffer.length, from);
    return buffer.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface FailedRun {
  /** The profiles.yml the build's profile was made from (the working tree's). */
  profilesFile: string;
  dbtTarget: string;
  ref: string;
}

const LOCKED = /Could not set lock on file "([^"]+)": Conflicting lock is held in (.+?) \(PID (\d+)\)/;
const MISSING_ENV_VAR = /Env var required but not provided: '([^']+)'/;
const BAD_PROFILE_VALUE = /Runtime Error\r?\n\s*at path (\[[^\]\n]*\]): ([^\n]+)/;

/**
 * The cause of a failed dbt run as one line with its fix, when dbt's log names one the user can
 * act on (dbt's own output holds it among tracebacks); undefined otherwise.
 */
export function knownDbtFailure(log: string, run: FailedRun): UserError | undefined {
  const locked = LOCKED.exec(log);
  if (locked) {
    const [, file, program, pid] = locked;
    return new UserError(
      `${file} is held open by another program, ${program} (PID ${pid}), and DuckDB lets one process at a time open a file for writing: close that program's connection (a notebook, a DuckDB shell, an IDE), then build again.`,
    );
  }
  const missing = MISSING_ENV_VAR.exec(log);
  if (missing) {
    const name = missing[1];
    const where = textOf(run.profilesFile).includes(name) ? run.profilesFile : `the project at ${run.ref}`;
    return new UserError(
      `environment variable ${name} is not set, and ${where} reads it with env_var('${name}') and no default: set it (export ${name}=...) before the build, or give env_var() a default.`,
    );
  }
  const badValue = BAD_PROFILE_VALUE.exec(log);
  if (badValue) {
    const [, path, problem] = badValue;
    return new UserError(
      `target '${run.dbtTarget}' of ${run.profilesFile} has a value dbt refuses (at ${path}: ${problem.trim()}): fix it there (or the environment variable it reads); every isolated build connects with the working tree's profile.`,
    );
  }
  return undefined;
}

function textOf(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** dbt's parse of the project at `ref` failed, and dbt's output says why. */
export function parseFailed(ref: string): UserError {
  return new UserError(`dbt parse failed (see its output above): fix the project at ${ref}, or pick another ref.`);
}
