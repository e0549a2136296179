import { UserError } from '../workspace/errors';

export const DBT_COMMANDS = ['build', 'run', 'seed', 'test', 'snapshot', 'compile', 'retry'] as const;
export type DbtCommand = (typeof DBT_COMMANDS)[number];

export interface DbtSelection {
  select?: string[];
  exclude?: string[];
  selector?: string;
  /** YAML or JSON text, as dbt's --vars takes it. */
  vars?: string;
  threads?: number;
  fullRefresh?: boolean;
  extraArgs?: string[];
}

export interface DbtLocations {
  projectDir: string;
  profilesDir: string;
  target: string;
  targetPath: string;
  logPath: string;
}

/** The argument list of one dbt command (`source freshness` is two words); nothing here goes through a shell. */
export function dbtArgs(
  command: string | readonly string[],
  where: DbtLocations,
  selection: DbtSelection = {},
): string[] {
  const args = [...[command].flat(), ...locationArgs(where)];
  if (selection.select?.length) args.push('--select', ...selection.select);
  if (selection.exclude?.length) args.push('--exclude', ...selection.exclude);
  if (selection.selector) args.push('--selector', selection.selector);
  if (selection.vars) args.push('--vars', selection.vars);
  if (selection.threads !== undefined) args.push('--threads', String(selection.threads));
  if (selection.fullRefresh) args.push('--full-refresh');
  args.push(...(selection.extraArgs ?? []));
  return args;
}

/** `dbt deps`: it installs the project's packages, so it takes no target. */
export function depsArgs(where: Pick<DbtLocations, 'projectDir' | 'profilesDir' | 'logPath'>): string[] {
  return ['deps', '--project-dir', where.projectDir, '--profiles-dir', where.profilesDir, '--log-path', where.logPath];
}

/** `dbt run-operation` of one macro, quiet so that the macro's printed result is the output to read. */
export function runOperationArgs(
  macro: string,
  macroArgs: unknown,
  where: DbtLocations & { profile: string },
): string[] {
  return [
    '--quiet',
    'run-operation',
    macro,
    '--args',
    JSON.stringify(macroArgs),
    ...locationArgs(where, where.profile),
  ];
}

/** Where dbt reads the project and profile and writes its artifacts and logs. */
function locationArgs(where: DbtLocations, profile?: string): string[] {
  return [
    '--project-dir',
    where.projectDir,
    '--profiles-dir',
    where.profilesDir,
    ...(profile === undefined ? [] : ['--profile', profile]),
    '--target',
    where.target,
    '--target-path',
    where.targetPath,
    '--log-path',
    where.logPath,
  ];
}

/**
 * dbt flags the plugin sets itself, with the option that sets them: the isolation check vouches
 * for a run with exactly these, so `args` may not change them.
 */
const PLUGIN_OWNED_FLAGS: Record<string, string> = {
  '--profiles-dir': 'the profilesDir option',
  '--profile': "'profile:' in dbt_project.yml",
  '--target': 'the target option',
  '-t': 'the target option',
  '--project-dir': 'the Nx project it runs for',
  '--target-path': 'the plugin (the build folder under .dot)',
  '--log-path': 'the plugin (the build folder under .dot)',
  '--vars': 'the vars option',
  '--state': 'the deferTo option',
  '--defer': 'the deferTo option',
  '--no-defer': 'the deferTo option',
  '--defer-state': 'the deferTo option',
  '--favor-state': 'the deferTo option',
  '--no-favor-state': 'the deferTo option',
  '--deprecated-defer': 'the deferTo option',
  '--deprecated-state': 'the deferTo option',
  '--deprecated-favor-state': 'the deferTo option',
};

/** Refuses `args` that would make dbt run something other than what the isolation check read. */
export function refusePluginOwnedArgs(args: string[] = []): void {
  for (const arg of args) {
    const flag = ownedFlagOf(arg);
    if (flag === undefined) continue;
    throw new UserError(
      `args holds ${flag}, which the plugin sets itself so that dbt runs exactly what the isolation check read: use ${PLUGIN_OWNED_FLAGS[flag]} instead, and remove ${flag} from args.`,
    );
  }
}

function ownedFlagOf(arg: string): string | undefined {
  const long = arg.split('=')[0];
  if (long.startsWith('--')) return long in PLUGIN_OWNED_FLAGS ? long : undefined;
  // Short options cluster and take their value attached: -t, -tprod, -xt prod.
  return /^-[A-Za-z]*t/.test(arg) ? '-t' : undefined;
}

/** Whether dbt will store every test's failures (`--store-failures` or DBT_STORE_FAILURES), whatever the tests' configs say. */
export function storesAllTestFailures(args: string[] = [], env: NodeJS.ProcessEnv = {}): boolean {
  const fromEnv = env.DBT_ENGINE_STORE_FAILURES ?? env.DBT_STORE_FAILURES;
  const envTrue = fromEnv !== undefined && !['', '0', 'false', 'f', 'no', 'n', 'off'].includes(fromEnv.toLowerCase());
  return envTrue || args.includes('--store-failures');
}
