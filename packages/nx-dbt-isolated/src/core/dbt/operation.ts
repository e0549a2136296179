import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { runOperationArgs } from './args';
import { captureDbt, dbtEnvironment } from './process';
import { operationsDir } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { removeIfEmpty } from '../workspace/files';
import { holdLease } from '../workspace/lock';

/** A build's generated profile: the connection that build wrote with. */
export interface WarehouseConnection {
  workspaceRoot: string;
  dbt: string;
  /** The folder of a build's generated profiles.yml. */
  profilesDir: string;
  profile: string;
  target: string;
  env: NodeJS.ProcessEnv;
}

export interface Operation {
  /** The macro's name; `text` defines it and prints its result with `RESULT_PREFIX`. */
  macro: string;
  text: string;
  args: unknown;
  /** The one-line error for a failure, given the last line dbt printed. */
  failure(lastLine: string): string;
}

/** Macros print their JSON result on one line after this prefix. */
export const RESULT_PREFIX = 'nx-dbt-isolated-result:';

const PROJECT_FILE = `# Written by nx-dbt-isolated to run one of its macros against a build's warehouse; removed after use.
name: nx_dbt_isolated_operation
version: "1.0"
config-version: 2
profile: nx_dbt_isolated
macro-paths: ["macros"]
`;

export const OPERATION_PREFIX = 'operation-';

/**
 * Runs `operation`'s macro with `dbt run-operation` from a small dbt project made for the purpose
 * under `.dot/tmp`, so that it works with any warehouse dbt supports, and returns its result.
 */
export async function runOperation(connection: WarehouseConnection, operation: Operation): Promise<unknown> {
  const projectDir = join(operationsDir(connection.workspaceRoot), `${OPERATION_PREFIX}${randomUUID()}`);
  // Made with the folder, the lease tells a clean that the folder is in use (clean/leftovers.ts).
  const release = await holdLease(projectDir, 'operation');
  mkdirSync(join(projectDir, 'macros'), { recursive: true });
  writeFileSync(join(projectDir, 'dbt_project.yml'), PROJECT_FILE);
  writeFileSync(join(projectDir, 'macros', `${operation.macro}.sql`), operation.text);
  try {
    const { code, output } = await captureDbt(
      connection.dbt,
      runOperationArgs(operation.macro, operation.args, {
        projectDir,
        profilesDir: connection.profilesDir,
        profile: connection.profile,
        target: connection.target,
        targetPath: join(projectDir, 'target'),
        logPath: join(projectDir, 'logs'),
      }),
      projectDir,
      dbtEnvironment(connection.env),
    );
    const line = output.split('\n').find((text) => text.startsWith(RESULT_PREFIX));
    if (code === 0 && line !== undefined) return JSON.parse(line.slice(RESULT_PREFIX.length));
    throw new UserError(operation.failure(complaint(output)));
  } finally {
    await release();
    rmSync(projectDir, { recursive: true, force: true });
    removeIfEmpty(dirname(projectDir));
  }
}

/**
 * The line of dbt's output that says what went wrong: the warehouse's own `… Error: …` line, or
 * the one after dbt's `… Error` heading, else the last line.
 */
function complaint(output: string): string {
  const lines = output
    .split('\n')
    .map((line) => stripVTControlCharacters(line).trim())
    .filter(Boolean);
  const stated = lines.find((line) => /^\w[\w ]* Error: /.test(line));
  const heading = lines.findIndex((line) => /Error$/.test(line));
  return stated ?? (heading >= 0 ? lines[heading + 1] : undefined) ?? lines.at(-1) ?? 'no output';
}
