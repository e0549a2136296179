import { parseTargetString, type ProjectGraph } from '@nx/devkit';

/** What an `nx` command line asks for, as far as isolated builds are concerned. */
export interface RequestedTasks {
  /** Nx target names the command runs; undefined when the command line is not understood. */
  targets?: string[];
  /** The projects `nx run project:target` names; undefined for run-many and affected. */
  projects?: string[];
  /** `--ref` given on the command line. */
  ref?: string;
  /** `--deferTo` given on the command line: the base of a slim build. */
  deferTo?: string;
  /** `--base` and `--head` of `nx run <project>:diff`, as typed (Nx makes a number of digits). */
  base?: string;
  head?: string;
  /** `--target`/`-t` of `nx run project:target`, which names the dbt target there. */
  dbtTarget?: string;
  /** The Nx configuration: `project:target:configuration` or `--configuration`/`-c`. */
  configuration?: string;
  /** Each `--exclude` of `nx run project:target`, which Nx takes for itself there: dbt's exclude. */
  exclude?: string[];
  /** `--profilesDir` given on the command line: Nx passes it to the executor, not to the hook. */
  profilesDir?: string;
  /** `--dbtExecutable` given on the command line, for the same reason. */
  dbtExecutable?: string;
}

const RUN_MANY = new Set(['run-many', 'affected']);

/**
 * What the command line asks for. `project:target:configuration` is split as Nx splits it: by the
 * project and target names the graph knows, so project and target names may hold colons; without
 * the graph (or for names it does not know), at the colons.
 */
export function requestedTasks(argv: string[], graph: ProjectGraph = { nodes: {}, dependencies: {} }): RequestedTasks {
  const args = argv.slice(2);
  const ref = valueOf(args, ['--ref']);
  const deferTo = valueOf(args, ['--deferTo', '--defer-to']);
  const configuration = valueOf(args, ['--configuration', '-c']);
  const profilesDir = valueOf(args, ['--profilesDir', '--profiles-dir']);
  const dbtExecutable = valueOf(args, ['--dbtExecutable', '--dbt-executable']);
  const runOne = args[0] === 'run' ? args[1] : args[0];
  const named = runOne?.includes(':') ? namedTask(runOne, graph) : undefined;
  if (named) {
    const { project, target, configuration: positionalConfiguration } = named;
    const exclude = valuesOf(args, ['--exclude']);
    return {
      targets: [target],
      projects: [project],
      ref,
      deferTo,
      base: valueOf(args, ['--base']),
      head: valueOf(args, ['--head']),
      dbtTarget: valueOf(args, ['--target', '-t']),
      configuration: positionalConfiguration ?? configuration,
      exclude: exclude.length > 0 ? exclude : undefined,
      profilesDir,
      dbtExecutable,
    };
  }
  if (RUN_MANY.has(args[0])) {
    const targets = valuesOf(args, ['--targets', '--target', '-t']).flatMap((value) => value.split(','));
    return {
      targets: targets.length > 0 ? targets : undefined,
      ref,
      deferTo,
      configuration,
      profilesDir,
      dbtExecutable,
    };
  }
  return { ref, deferTo, configuration, profilesDir, dbtExecutable };
}

function namedTask(specifier: string, graph: ProjectGraph) {
  try {
    return parseTargetString(specifier, graph);
  } catch {
    return undefined; // No project and target: Nx refuses the command itself.
  }
}

function valueOf(args: string[], names: string[]): string | undefined {
  return valuesOf(args, names)[0];
}

/** Every value of the given flags, in `--flag=value` and `--flag value` forms. */
function valuesOf(args: string[], names: string[]): string[] {
  const values: string[] = [];
  args.forEach((arg, index) => {
    const inline = names.map((name) => `${name}=`).find((prefix) => arg.startsWith(prefix));
    if (inline) values.push(arg.slice(inline.length));
    else if (names.includes(arg) && index + 1 < args.length) values.push(args[index + 1]);
  });
  return values;
}
