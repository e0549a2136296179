import { cleanSelector, decide, lastUsed, parseAge, type CleanSelector, type SelectionFacts } from './policy';
import { UserError } from '../workspace/errors';
import { buildRecord } from '../testing/build-record';
import { thrown } from '../testing/thrown';

const commit = (prefix: string) => prefix.padEnd(40, '0');
const DAY = 86_400_000;
const now = new Date('2026-11-24T12:00:00.000Z');
const daysAgo = (days: number) => new Date(now.getTime() - days * DAY).toISOString();

/** A build of `prefix`'s commit against `target`, last used `days` ago. */
const build = (prefix: string, days: number, target = 'dev') =>
  buildRecord({ commit: commit(prefix), buildId: prefix, target, startedAt: daysAgo(days), endedAt: daysAgo(days) });

const facts = (overrides: Partial<SelectionFacts> = {}): SelectionFacts => ({
  now,
  namedCommits: new Map(),
  protectedCommits: new Map(),
  unreachableCommits: new Set(),
  ...overrides,
});

describe('cleanSelector', () => {
  it('reads each way of choosing builds', () => {
    expect(cleanSelector({ ref: 'v1.2' })).toEqual({ kind: 'refs', refs: ['v1.2'] });
    expect(cleanSelector({ ref: ['a', 'b'] })).toEqual({ kind: 'refs', refs: ['a', 'b'] });
    expect(cleanSelector({ ref: [1234567, 'b'] })).toEqual({ kind: 'refs', refs: ['1234567', 'b'] });
    expect(cleanSelector({ all: true })).toEqual({ kind: 'all' });
    expect(cleanSelector({ keep: 5 })).toEqual({ kind: 'filters', keep: 5, olderThan: undefined, unreachable: false });
    expect(cleanSelector({ keep: 0, olderThan: '7d', unreachable: true })).toEqual({
      kind: 'filters',
      keep: 0,
      olderThan: { text: '7d', ms: 7 * DAY },
      unreachable: true,
    });
  });

  it.each([
    [{}, /clean needs to know what to remove: pass --ref=<ref>, --keep=<n>/],
    [{ all: false, unreachable: false }, /clean needs to know what to remove/],
    [{ ref: 'main', keep: 2 }, /--ref and --keep\/--olderThan\/--unreachable cannot be combined/],
    [{ all: true, olderThan: '1d' }, /--all and --keep\/--olderThan\/--unreachable cannot be combined/],
    [{ ref: 'main', all: true }, /--ref and --all cannot be combined/],
    [{ keep: -1 }, /--keep=-1 is not a count of builds: pass a whole number of 0 or more/],
    [{ keep: 1.5 }, /--keep=1.5 is not a count/],
    [{ olderThan: '7x' }, /--olderThan=7x is not an age: write a number and a unit, s, m, h, d or w/],
  ])('refuses %j with one line saying what to pass', (options, message) => {
    const error = thrown(() => cleanSelector(options));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('\n');
  });
});

describe('parseAge', () => {
  it.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['7d', 7 * DAY],
    ['2w', 14 * DAY],
    [' 3d ', 3 * DAY],
  ])('reads %s', (text, ms) => expect(parseAge(text).ms).toBe(ms));

  it.each(['7', 'd', '7days', '-1d', '1.5d', ''])('refuses %j', (text) => {
    expect(() => parseAge(text)).toThrow(UserError);
  });
});

describe('lastUsed', () => {
  it('is the latest of start, end and restore from the cache', () => {
    expect(lastUsed(build('a', 3))).toBe(daysAgo(3));
    expect(lastUsed({ ...build('a', 3), endedAt: undefined })).toBe(daysAgo(3));
    expect(lastUsed({ ...build('a', 3), restoredFromCacheAt: daysAgo(1) })).toBe(daysAgo(1));
  });
});

describe('decide', () => {
  const newest = build('aaaa0001', 1);
  const middle = build('aaaa0002', 5);
  const oldest = build('aaaa0003', 10);
  const records = [middle, oldest, newest];
  const verdicts = (selector: CleanSelector, given: Partial<SelectionFacts> = {}) =>
    decide(records, selector, facts(given)).map(({ clean }) => clean);

  it('cleans the commits named by --ref, protected or not, and nothing else', () => {
    const given = {
      namedCommits: new Map([[oldest.commit, 'v1.0']]),
      protectedCommits: new Map([[oldest.commit, 'v1.0']]),
    };
    expect(decide(records, { kind: 'refs', refs: ['v1.0'] }, facts(given))).toEqual([
      { clean: false, reason: 'not named by --ref' },
      { clean: true, reason: 'named by --ref=v1.0' },
      { clean: false, reason: 'not named by --ref' },
    ]);
  });

  it('keeps a promoted build whatever selects it, saying where it is promoted', () => {
    const promoted = { ...oldest, promoted: [{ schema: 'prod', at: daysAgo(1) }] };
    const named = { namedCommits: new Map([[oldest.commit, 'v1.0']]) };
    const selectors: CleanSelector[] = [
      { kind: 'refs', refs: ['v1.0'] },
      { kind: 'all' },
      { kind: 'filters', keep: 0, unreachable: false },
    ];
    for (const selector of selectors) {
      expect(decide([promoted, newest], selector, facts(named))[0]).toEqual({
        clean: false,
        reason: 'promoted to prod',
      });
    }
  });

  describe('a build that a kept build reads (ADR 25)', () => {
    const base = build('1111aaaa', 3);
    const slim = {
      ...build('2222bbbb', 1),
      ref: 'main',
      deferredTo: { commit: base.commit, ref: 'v1', schema: 'main_1111aaaa' },
    };
    const reason = 'read by the slim build of main (2222bbbb)';

    it('keeps the base of a kept slim build, whatever the policy, saying which build reads it', () => {
      const selectors: [CleanSelector, Partial<SelectionFacts>][] = [
        [{ kind: 'filters', keep: 1, unreachable: false }, {}],
        [{ kind: 'filters', olderThan: parseAge('2d'), unreachable: false }, {}],
        [{ kind: 'filters', unreachable: true }, { unreachableCommits: new Set([base.commit]) }],
        [{ kind: 'refs', refs: ['v1'] }, { namedCommits: new Map([[base.commit, 'v1']]) }],
        [{ kind: 'all' }, { protectedCommits: new Map([[slim.commit, 'main']]) }],
      ];
      for (const [selector, given] of selectors) {
        expect(decide([slim, base], selector, facts(given))[1]).toEqual({ clean: false, reason });
      }
    });

    it('keeps it when the slim build is kept for being promoted, and down a chain of readers', () => {
      const promoted = { ...slim, promoted: [{ schema: 'prod', at: daysAgo(1) }] };
      expect(decide([promoted, base], { kind: 'all' }, facts())).toEqual([
        { clean: false, reason: 'promoted to prod' },
        { clean: false, reason },
      ]);
      const older = build('0000cccc', 5);
      const middle = { ...base, deferredTo: { commit: older.commit, ref: 'v0', schema: 'main_0000cccc' } };
      const decided = decide([promoted, middle, older], { kind: 'all' }, facts());
      expect(decided[2]).toEqual({ clean: false, reason: 'read by the slim build of main (1111aaaa)' });
    });

    it('keeps the base of an earlier slim build whose views a later partial build of the commit left in place', () => {
      const selectedAfterSlim = { ...slim, deferredTo: undefined, readsFrom: [slim.deferredTo] };
      expect(decide([selectedAfterSlim, base], { kind: 'filters', keep: 1, unreachable: false }, facts())[1]).toEqual({
        clean: false,
        reason: 'read by what an earlier slim build left in the build of main (2222bbbb)',
      });
    });

    it('cleans the base with its slim build, and leaves the base of another dbt target or warehouse to its policy', () => {
      expect(decide([slim, base], { kind: 'all' }, facts()).map((decision) => decision.clean)).toEqual([true, true]);
      const elsewhere = { ...base, warehouse: { type: 'duckdb', location: '/elsewhere.duckdb' } };
      const otherTarget = { ...base, target: 'ci' };
      const keep = { kind: 'filters', keep: 1, unreachable: false } as const;
      expect(decide([slim, elsewhere], keep, facts())[1].clean).toBe(true);
      expect(decide([slim, otherTarget], keep, facts())[1].clean).toBe(false); // the newest of dbt target ci
    });
  });

  it('cleans every build but the protected ones with --all', () => {
    const given = { protectedCommits: new Map([[newest.commit, 'main']]) };
    expect(decide(records, { kind: 'all' }, facts(given))).toEqual([
      { clean: true, reason: '--all' },
      { clean: true, reason: '--all' },
      { clean: false, reason: 'protected (main)' },
    ]);
  });

  it('keeps the most recently used builds, counted per dbt target', () => {
    const keepOne: CleanSelector = { kind: 'filters', keep: 1, unreachable: false };
    expect(verdicts(keepOne)).toEqual([true, true, false]);
    expect(decide(records, keepOne, facts())[0].reason).toBe('not among the 1 most recent');
    expect(decide(records, keepOne, facts())[2].reason).toBe('among the 1 most recent');
    expect(verdicts({ kind: 'filters', keep: 0, unreachable: false })).toEqual([true, true, true]);
    expect(verdicts({ kind: 'filters', keep: 3, unreachable: false })).toEqual([false, false, false]);

    const prod = build('aaaa0004', 20, 'prod');
    expect(decide([...records, prod], keepOne, facts()).map(({ clean }) => clean)).toEqual([true, true, false, false]);
  });

  it('keeps the N most recent unprotected builds, plus the protected ones: a protected build never takes a place', () => {
    const tag = build('aaaa0005', 0);
    const given = { protectedCommits: new Map([[tag.commit, 'v2.0']]) };
    expect(decide([tag, ...records], { kind: 'filters', keep: 1, unreachable: false }, facts(given))).toEqual([
      { clean: false, reason: 'protected (v2.0)' },
      { clean: true, reason: 'not among the 1 most recent' },
      { clean: true, reason: 'not among the 1 most recent' },
      { clean: false, reason: 'among the 1 most recent' },
    ]);
  });

  it('counts a build restored from the cache as used when it was restored', () => {
    const restored = { ...oldest, restoredFromCacheAt: daysAgo(0) };
    expect(decide([middle, restored, newest], { kind: 'filters', keep: 1, unreachable: false }, facts())[1]).toEqual({
      clean: false,
      reason: 'among the 1 most recent',
    });
  });

  it('cleans builds unused for longer than --olderThan', () => {
    const olderThan = { text: '7d', ms: 7 * DAY };
    expect(decide(records, { kind: 'filters', olderThan, unreachable: false }, facts())).toEqual([
      { clean: false, reason: 'used in the last 7d' },
      { clean: true, reason: 'unused for over 7d' },
      { clean: false, reason: 'used in the last 7d' },
    ]);
  });

  it('cleans builds of unreachable commits with --unreachable', () => {
    const given = { unreachableCommits: new Set([middle.commit]) };
    expect(decide(records, { kind: 'filters', unreachable: true }, facts(given))).toEqual([
      { clean: true, reason: 'unreachable' },
      { clean: false, reason: 'reachable from a branch, tag or HEAD' },
      { clean: false, reason: 'reachable from a branch, tag or HEAD' },
    ]);
  });

  it('cleans only what every given filter selects, and never a protected commit', () => {
    const selector: CleanSelector = {
      kind: 'filters',
      keep: 1,
      olderThan: { text: '7d', ms: 7 * DAY },
      unreachable: true,
    };
    const given = {
      unreachableCommits: new Set([middle.commit, oldest.commit, newest.commit]),
      protectedCommits: new Map([[oldest.commit, 'v1.0']]),
    };
    expect(decide(records, selector, facts(given))).toEqual([
      { clean: false, reason: 'used in the last 7d' },
      { clean: false, reason: 'protected (v1.0)' },
      { clean: false, reason: 'among the 1 most recent' },
    ]);
    const unprotected = facts({ unreachableCommits: given.unreachableCommits });
    expect(decide(records, selector, unprotected)[1]).toEqual({
      clean: true,
      reason: 'not among the 1 most recent, unused for over 7d, unreachable',
    });
  });
});
