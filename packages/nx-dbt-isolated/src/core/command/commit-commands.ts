import { dbtArgs, type DbtLocations, type DbtSelection } from '../dbt/args';
import { UserError } from '../workspace/errors';

/** The dbt commands run on a commit's isolated build rather than building it (run-at-commit.ts). */
export const COMMIT_COMMANDS = ['ls', 'show', 'source freshness', 'docs generate', 'run-operation'] as const;
export type CommitCommand = (typeof COMMIT_COMMANDS)[number];

interface CommandRules {
  /** It reads the build's relations, so the commit's full build is made first when missing. */
  readsBuild: boolean;
  /** It opens the warehouse: on DuckDB it takes the file's writer lock. */
  opensWarehouse: boolean;
  /** Artifacts it writes that belong beside the build's own, for diff, review and state selectors. */
  keeps: string[];
  /** Whether dbt takes --threads for it. */
  threads: boolean;
}

const RULES: Record<CommitCommand, CommandRules> = {
  ls: { readsBuild: false, opensWarehouse: false, keeps: [], threads: false },
  show: { readsBuild: true, opensWarehouse: true, keeps: [], threads: true },
  'source freshness': { readsBuild: false, opensWarehouse: true, keeps: ['sources.json'], threads: true },
  'docs generate': { readsBuild: true, opensWarehouse: true, keeps: ['catalog.json'], threads: true },
  'run-operation': { readsBuild: true, opensWarehouse: true, keeps: [], threads: false },
};

export function commandRules(command: CommitCommand): CommandRules {
  return RULES[command];
}

/** What one command at a commit is asked to do, besides where it runs. */
export interface CommitCommandArgs {
  command: CommitCommand;
  selection: DbtSelection;
  /** show: a query instead of a selected node. */
  inline?: string;
  /** show: rows to print. */
  limit?: number;
  /** run-operation: the macro, and its arguments as YAML or JSON text. */
  macro?: string;
  macroArgs?: string;
}

/** Options that belong to one command only, and that command. */
const OWN_OPTIONS: [keyof CommitCommandArgs, CommitCommand][] = [
  ['inline', 'show'],
  ['limit', 'show'],
  ['macro', 'run-operation'],
  ['macroArgs', 'run-operation'],
];

/** dbt flags that would make a command write or send SQL dbt does not read, and what to do instead. */
const REFUSED_FLAGS: Record<string, string> = {
  '--full-refresh': 'it would drop and rebuild relations of the build: rebuild the commit instead',
  '--inline-direct': 'it sends the query to the warehouse unread by dbt: use --inline',
};

/** Refuses options the command does not take, or a command missing what it needs, in one line. */
export function refuseMisusedOptions(args: CommitCommandArgs & { strictIsolation?: boolean }): void {
  const refused = (args.selection.extraArgs ?? [])
    .map((arg) => arg.split('=')[0])
    .find((flag) => flag in REFUSED_FLAGS);
  if (refused !== undefined) {
    throw new UserError(
      `args holds ${refused}, which dbt ${args.command} on a commit's build does not take: ${REFUSED_FLAGS[refused]}.`,
    );
  }
  if (args.strictIsolation && args.command !== 'run-operation') {
    throw new UserError(
      `--strictIsolation contains run-operation's macro; dbt ${args.command} runs as the profile's user, as the commit's build did: leave it out.`,
    );
  }
  for (const [option, owner] of OWN_OPTIONS) {
    if (args[option] !== undefined && args.command !== owner) {
      throw new UserError(`--${option} is for --command=${owner}, not ${args.command}: leave it out.`);
    }
  }
  const { select, exclude, selector } = args.selection;
  const selects = Boolean(select?.length || exclude?.length || selector);
  if (args.command === 'show' && !select?.length && args.inline === undefined) {
    throw new UserError('dbt show needs a node or a query: add --select=<model> or --inline="select …".');
  }
  if (args.command === 'show' && args.inline !== undefined && selects) {
    throw new UserError('dbt show runs either --inline or a selected node: give one of the two.');
  }
  if (args.command === 'run-operation' && !args.macro) {
    throw new UserError('run-operation runs one macro: name it with --macro=<macro name>.');
  }
  if (args.command === 'run-operation' && selects) {
    throw new UserError('run-operation selects no nodes: leave out --select, --exclude and --selector.');
  }
}

/**
 * dbt's argument list for the command in `where`. `show` of a seed loads it (dbt shows a seed
 * through its seed runner, truncate and insert), so seeds are never selected for show: a seed's
 * rows are shown with --inline.
 */
export function commitCommandArgs(args: CommitCommandArgs, where: DbtLocations): string[] {
  const words = args.command === 'run-operation' ? ['run-operation', args.macro!] : args.command.split(' ');
  const selection = { ...args.selection, fullRefresh: false };
  if (!RULES[args.command].threads) selection.threads = undefined;
  if (args.command === 'show' && args.inline === undefined) {
    selection.exclude = [...(selection.exclude ?? []), 'resource_type:seed'];
  }
  const argv = dbtArgs(words, where, selection);
  if (args.inline !== undefined) argv.push('--inline', args.inline);
  if (args.limit !== undefined) argv.push('--limit', String(args.limit));
  if (args.macroArgs !== undefined) argv.push('--args', args.macroArgs);
  // One self-contained page besides index.html: what CI publishes or a reviewer opens from disk.
  if (args.command === 'docs generate') argv.push('--static');
  return argv;
}

/** `docs generate` → `docs-generate`: the command's folder under the build's. */
export function commandFolderName(command: CommitCommand): string {
  return command.replace(/ /g, '-');
}
