import { logger as nxLogger } from 'nx/src/utils/logger';
import { COLOUR_FROM_CLI } from '../contract';

/**
 * Whether a task's output may carry colour codes, for the plugin's lines and dbt's: never with
 * NO_COLOR or FORCE_COLOR=0/false (Nx passes both to the task); always where the hook saw the
 * user force colours (colourChoiceOf: Nx gives every task FORCE_COLOR=true, so the task cannot
 * tell); else when output goes to a terminal (Nx runs a task in a pseudo-terminal when it is on
 * one, through a pipe otherwise). With the Nx daemon the hook runs in the daemon and sees no
 * FORCE_COLOR of the user's: then only a terminal brings colours.
 */
export function outputHasColours(
  env: NodeJS.ProcessEnv = process.env,
  stdout: Pick<NodeJS.WriteStream, 'isTTY'> = process.stdout,
): boolean {
  if (env.NO_COLOR || env.FORCE_COLOR === '0' || env.FORCE_COLOR === 'false') return false;
  if (env[COLOUR_FROM_CLI] === 'never' || env[COLOUR_FROM_CLI] === 'always') return env[COLOUR_FROM_CLI] === 'always';
  return stdout.isTTY === true;
}

/**
 * What the executors print with: Nx's logger, the one @nx/devkit re-exports, taken from the
 * module Nx's task process has loaded already (loading @nx/devkit itself there costs every build
 * a few tenths of a second); its error lines lose their colour where output has none.
 */
export const logger = {
  info: (line: string) => nxLogger.info(line),
  warn: (line: string) => (outputHasColours() ? nxLogger.warn(line) : console.warn(line)),
  error: (line: string) => (outputHasColours() ? nxLogger.error(line) : console.error(line)),
};

/** dbt colours its lines by DBT_USE_COLORS: the same choice, unless the user made their own. */
export function chooseDbtColours(env: NodeJS.ProcessEnv = process.env): void {
  env.DBT_USE_COLORS ??= outputHasColours(env) ? 'true' : 'false';
}
