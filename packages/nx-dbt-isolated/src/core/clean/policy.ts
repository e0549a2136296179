import { UserError } from '../workspace/errors';
import type { BuildRecord } from '../build/records';
import { sameWarehouse } from '../dbt/profiles';

/** What a clean selects: the builds of named commits, every build, or the builds every given filter picks. */
export type CleanSelector =
  | { kind: 'refs'; refs: string[] }
  | { kind: 'all' }
  | { kind: 'filters'; keep?: number; olderThan?: Age; unreachable: boolean };

export interface Age {
  /** As the user wrote it, e.g. `7d`. */
  text: string;
  ms: number;
}

export interface CleanSelectorOptions {
  /** Nx reads a short sha made of digits only as a number. */
  ref?: string | number | (string | number)[];
  keep?: number;
  olderThan?: string;
  unreachable?: boolean;
  all?: boolean;
}

const UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Reads the selection options of a clean, refusing combinations that have no clear meaning. */
export function cleanSelector(options: CleanSelectorOptions): CleanSelector {
  const refs = options.ref === undefined ? [] : [options.ref].flat().map(String);
  const filters = {
    keep: options.keep === undefined ? undefined : keepCount(options.keep),
    olderThan: options.olderThan === undefined ? undefined : parseAge(options.olderThan),
    unreachable: options.unreachable === true,
  };
  const hasFilter = filters.keep !== undefined || filters.olderThan !== undefined || filters.unreachable;
  const modes = [
    refs.length > 0 && '--ref',
    options.all === true && '--all',
    hasFilter && '--keep/--olderThan/--unreachable',
  ];
  const chosen = modes.filter(Boolean);
  if (chosen.length === 0) {
    throw new UserError(
      'clean needs to know what to remove: pass --ref=<ref>, --keep=<n>, --olderThan=<age, e.g. 7d>, --unreachable or --all (add --dryRun to see the plan first).',
    );
  }
  if (chosen.length > 1) {
    throw new UserError(
      `${chosen.join(' and ')} cannot be combined: --ref and --all each say on their own what to clean, while --keep, --olderThan and --unreachable combine with each other.`,
    );
  }
  if (refs.length > 0) return { kind: 'refs', refs };
  if (options.all === true) return { kind: 'all' };
  return { kind: 'filters', ...filters };
}

function keepCount(value: unknown): number {
  const count = Number(value);
  if (Number.isInteger(count) && count >= 0) return count;
  throw new UserError(
    `--keep=${String(value)} is not a count of builds: pass a whole number of 0 or more, e.g. --keep=5.`,
  );
}

export function parseAge(text: string): Age {
  const match = /^(\d+)\s*([smhdw])$/.exec(String(text).trim());
  if (!match) {
    throw new UserError(
      `--olderThan=${text} is not an age: write a number and a unit, s, m, h, d or w, e.g. --olderThan=7d or --olderThan=12h.`,
    );
  }
  return { text: `${match[1]}${match[2]}`, ms: Number(match[1]) * UNITS_MS[match[2]] };
}

export interface SelectionFacts {
  now: Date;
  /** Commits named by `--ref`, each with the ref that named it. */
  namedCommits: Map<string, string>;
  /** Commits the protected refs point at, each with the ref. */
  protectedCommits: Map<string, string>;
  /** Commits no branch, tag or HEAD leads to (asked for with `--unreachable` only). */
  unreachableCommits: Set<string>;
}

export interface Decision {
  clean: boolean;
  reason: string;
}

/** When the build was last made or restored here. */
export function lastUsed(record: BuildRecord): string {
  return [record.startedAt, record.endedAt, record.restoredFromCacheAt]
    .filter((time): time is string => typeof time === 'string')
    .sort()
    .at(-1)!;
}

/** Decides, for each build (in the order given), whether the selector cleans it, and why. */
export function decide(records: BuildRecord[], selector: CleanSelector, facts: SelectionFacts): Decision[] {
  const decisions = decideUnpromoted(records, selector, facts).map((decision, index) => {
    const promotedTo = records[index].promoted?.map((entry) => entry.schema);
    return promotedTo?.length ? { clean: false, reason: `promoted to ${promotedTo.join(', ')}` } : decision;
  });
  return keepingWhatKeptBuildsRead(records, decisions);
}

/** A build whose relations another build reads: dropping it would break the reader. */
export interface ReadBuild {
  commit: string;
  /** Why it stays, as the plan says it. */
  reason: string;
}

/**
 * The builds a build reads relations of, in the same project, dbt target and warehouse: a slim
 * build's deferral base. Builds that reuse relations of other builds add their sources here.
 */
export function buildsReadBy(record: BuildRecord): ReadBuild[] {
  const bases = [...(record.deferredTo ? [record.deferredTo] : []), ...(record.readsFrom ?? [])];
  return bases.map((base) => ({
    commit: base.commit,
    reason:
      base === record.deferredTo
        ? `read by the slim build of ${record.ref} (${record.buildId})`
        : `read by what an earlier slim build left in the build of ${record.ref} (${record.buildId})`,
  }));
}

/** Whatever policy picked, a build that a kept build reads is kept too, and so on down the chain. */
function keepingWhatKeptBuildsRead(records: BuildRecord[], decisions: Decision[]): Decision[] {
  const kept = [...decisions];
  const pending = records.filter((_, index) => !kept[index].clean);
  for (let reader = pending.pop(); reader; reader = pending.pop()) {
    for (const read of buildsReadBy(reader)) {
      records.forEach((record, index) => {
        if (!kept[index].clean || !isReadAs(record, read, reader)) return;
        kept[index] = { clean: false, reason: read.reason };
        pending.push(record);
      });
    }
  }
  return kept;
}

function isReadAs(record: BuildRecord, read: ReadBuild, reader: BuildRecord): boolean {
  return (
    record.commit === read.commit &&
    record.project === reader.project &&
    record.target === reader.target &&
    sameWarehouse(record.warehouse, reader.warehouse)
  );
}

function decideUnpromoted(records: BuildRecord[], selector: CleanSelector, facts: SelectionFacts): Decision[] {
  if (selector.kind === 'refs') {
    return records.map((record) => {
      const ref = facts.namedCommits.get(record.commit);
      return ref ? { clean: true, reason: `named by --ref=${ref}` } : { clean: false, reason: 'not named by --ref' };
    });
  }
  const recent =
    selector.kind === 'filters' && selector.keep !== undefined
      ? mostRecent(
          records.filter((record) => !facts.protectedCommits.has(record.commit)),
          selector.keep,
        )
      : undefined;
  return records.map((record) => {
    const protectedBy = facts.protectedCommits.get(record.commit);
    if (protectedBy) return { clean: false, reason: `protected (${protectedBy})` };
    if (selector.kind === 'all') return { clean: true, reason: '--all' };
    const reasons: string[] = [];
    if (recent) {
      if (recent.has(record)) return { clean: false, reason: `among the ${selector.keep} most recent` };
      reasons.push(`not among the ${selector.keep} most recent`);
    }
    if (selector.olderThan) {
      const idleMs = facts.now.getTime() - Date.parse(lastUsed(record));
      if (idleMs <= selector.olderThan.ms)
        return { clean: false, reason: `used in the last ${selector.olderThan.text}` };
      reasons.push(`unused for over ${selector.olderThan.text}`);
    }
    if (selector.unreachable) {
      if (!facts.unreachableCommits.has(record.commit))
        return { clean: false, reason: 'reachable from a branch, tag or HEAD' };
      reasons.push('unreachable');
    }
    return { clean: true, reason: reasons.join(', ') };
  });
}

/** The `count` most recently used builds of each dbt target (given the unprotected ones: protected builds stay on top of them). */
function mostRecent(records: BuildRecord[], count: number): Set<BuildRecord> {
  const kept = new Set<BuildRecord>();
  const byTarget = new Map<string, BuildRecord[]>();
  for (const record of records) byTarget.set(record.target, [...(byTarget.get(record.target) ?? []), record]);
  for (const builds of byTarget.values()) {
    const newestFirst = [...builds].sort((a, b) => lastUsed(b).localeCompare(lastUsed(a)));
    newestFirst.slice(0, count).forEach((record) => kept.add(record));
  }
  return kept;
}
