import { logger as nxLogger } from 'nx/src/utils/logger';
import { COLOUR_FROM_CLI } from '../contract';

/**
 * Whether a task's output may carry colour codes, for the plugin's lines and dbt's: the user's
 * choice as the hook read it (colourChoiceOf); on `auto`, whether output goes to a terminal (Nx
 * runs a task in a pseudo-terminal when it is on one, and through a pipe otherwise).
 */
export function outputHasColours(
  env: NodeJS.ProcessEnv = process.env,
  stdout: Pick<NodeJS.WriteStream, 'isTTY'> = process.stdout,
): boolean {
  const choice = env[COLOUR_FROM_CLI] ?? (env.NO_COLOR ? 'never' : 'auto');
  return choice === 'auto' ? stdout.isTTY === true : choice === 'always';
}

/**
 * What the executors print with: Nx's logger, the one @nx/devkit re-exports, taken from the
 * module Nx's task process has loaded already (loading @nx/devkit itself there costs every build
 * a few tenths of a second); its error lines lose their colour where output has none.
 */
export const logger = {
  info: (line: string) => nxLogger.info(line),
  error: (line: string) => (outputHasColours() ? nxLogger.error(line) : console.error(line)),
};

/** dbt colours its lines by DBT_USE_COLORS: the same choice, unless the user made their own. */
export function chooseDbtColours(env: NodeJS.ProcessEnv = process.env): void {
  env.DBT_USE_COLORS ??= outputHasColours(env) ? 'true' : 'false';
}
