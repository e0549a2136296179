import type { PreTasksExecution } from '@nx/devkit';

/**
 * Carries the dbt target from `nx run <project>:<target> --target=<dbt target>` to the executor.
 * `nx run` claims `--target` for itself and drops it when the positional `project:target` form
 * is used, so the executor would never see the flag the dbt user types.
 */
export const DBT_TARGET_FROM_CLI = 'NX_DBT_ISOLATED_TARGET';

export const preTasksExecution: PreTasksExecution = (_options, context) => {
  const dbtTarget = dbtTargetFromArgv(context.argv);
  if (dbtTarget !== undefined) process.env[DBT_TARGET_FROM_CLI] = dbtTarget;
};

/** The value of `--target`/`-t` in an `nx run project:target` command line, if any. */
export function dbtTargetFromArgv(argv: string[]): string | undefined {
  const args = argv.slice(2);
  const positional = args[0] === 'run' ? args[1] : args[0];
  if (positional === undefined || !positional.includes(':')) return undefined;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    const inline = /^(?:--target|-t)=(.*)$/.exec(arg);
    if (inline) return inline[1];
    if ((arg === '--target' || arg === '-t') && index + 1 < args.length) return args[index + 1];
  }
  return undefined;
}
