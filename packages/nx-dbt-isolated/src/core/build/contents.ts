import type { BuildRecord, RecordedSelection } from './records';

/**
 * What a build holds, decided once from what it was asked for (command, selection, deferral):
 * whether every node of the project was built into its schemas — what diff compares, promote
 * publishes and slim builds defer to — and, when not, the option that left part out.
 */
/** dbt flags that build every relation with none or only some of its rows. */
const ROW_LIMITING_FLAGS = ['--empty', '--sample'];

export interface BuildContents {
  complete: boolean;
  /** The option that left part of the project out, as typed: `--select`, `--command=seed`, `--deferTo`. */
  partialBecause?: string;
  /**
   * Options that change what dbt writes without leaving a node out (`--vars`, `--args`): such a
   * build is complete, but it is not the plain build of its commit that another name of the
   * commit may be served. A record written before selections were kept says `unrecorded`.
   */
  variedBy: string[];
}

/** dbt flags in `args` that narrow what a build runs, or the rows it writes (`--empty`, `--sample`). */
const NARROWING_FLAGS = [
  '--select',
  '-s',
  '--models',
  '-m',
  '--exclude',
  '--selector',
  '--resource-type',
  '--resource-types',
  '--exclude-resource-type',
  '--exclude-resource-types',
  ...ROW_LIMITING_FLAGS,
];

export function buildContents(command: string, selection: RecordedSelection, deferred: boolean): BuildContents {
  const partialBecause = leftOutBy(command, selection, deferred);
  const variedBy = [
    ...(selection.vars ? ['--vars'] : []),
    ...(selection.extraArgs?.length && !narrowingFlag(selection.extraArgs) ? ['--args'] : []),
  ];
  return partialBecause === undefined ? { complete: true, variedBy } : { complete: false, partialBecause, variedBy };
}

function leftOutBy(command: string, selection: RecordedSelection, deferred: boolean): string | undefined {
  if (deferred) return '--deferTo';
  if (command !== 'build') return `--command=${command}`;
  if (selection.select?.length) return '--select';
  if (selection.exclude?.length) return '--exclude';
  if (selection.selector) return '--selector';
  return narrowingFlag(selection.extraArgs ?? []);
}

function narrowingFlag(args: string[]): string | undefined {
  return args.map((arg) => arg.split('=')[0]).find((flag) => NARROWING_FLAGS.includes(flag));
}

/**
 * What a recorded build holds: as recorded, or for an older record from its command, selection
 * and deferral; one written before selections were kept is taken as its command and deferral
 * say (what those versions meant) but never as the plain build of its commit.
 */
export function contentsOf(record: BuildRecord): BuildContents {
  if (record.contents) return record.contents;
  const derived = buildContents(record.command, record.selection ?? {}, record.deferredTo !== undefined);
  return record.selection ? derived : { ...derived, variedBy: [...derived.variedBy, 'unrecorded'] };
}

/** A complete build with nothing that changes what dbt writes: the plain build of its commit. */
export function isPlainFullBuild(contents: BuildContents): boolean {
  return contents.complete && contents.variedBy.length === 0;
}

/** dbt compile renders SQL and writes no relation: nothing it does can leave the isolated schema. */
export function writesNoRelation(command: string): boolean {
  return command === 'compile';
}

/** How a partial build reads after "is": `a slim build (--deferTo), which holds only what changed`. */
export function partialSaid(contents: BuildContents): string {
  const flag = contents.partialBecause;
  if (flag === '--deferTo') return 'a slim build (--deferTo), which holds only what changed';
  if (flag === '--command=compile') return 'a --command=compile build, which compiled the project and built nothing';
  if (flag?.startsWith('--command=')) return `a ${flag} build, which ran dbt ${flag.slice('--command='.length)} only`;
  if (flag && ROW_LIMITING_FLAGS.includes(flag))
    return `a ${flag} build, which holds the relations without all their rows`;
  return `a ${flag} build, which holds only part of the project`;
}
