import type { CleanOutcome, PlannedBuild } from '../../core/clean/clean';
import { buildRecord } from '../../core/testing/build-record';
import { outcomeLines, planTable } from './plan-table';

const planned = (overrides: Partial<PlannedBuild>): PlannedBuild =>
  ({
    record: buildRecord(),
    paths: {},
    decision: { clean: false, reason: 'protected (main)' },
    schemas: [],
    keptSchemas: [],
    ...overrides,
  }) as PlannedBuild;

const kept = planned({});
const cleaned = planned({
  record: buildRecord({
    buildId: 'ef567890',
    ref: 'feature/x',
    startedAt: '2026-11-02T08:30:00.000Z',
    endedAt: undefined,
  }),
  decision: { clean: true, reason: 'not among the 1 most recent' },
  schemas: ['main_ef567890', 'main_ef567890_marts'],
  keptSchemas: [{ schema: 'main', reason: 'not under main_ef567890' }],
});

describe('planTable', () => {
  it('gives one aligned row per build, and the schemas under each build it cleans', () => {
    expect(planTable({ builds: [kept, cleaned] }, { project: 'analytics', dryRun: false }).split('\n')).toEqual([
      'Clean plan for analytics',
      '  commit    ref        target  status     last used         action  why',
      '  abcd1234  main       dev     succeeded  2026-01-01 00:01  keep    protected (main)',
      '  ef567890  feature/x  dev     succeeded  2026-11-02 08:30  clean   not among the 1 most recent',
      '      drops main_ef567890, main_ef567890_marts',
      '      leaves main: not under main_ef567890',
    ]);
  });

  it('marks in a dry run which schemas exist', () => {
    const existing = new Map([[cleaned, ['main_ef567890']]]);
    const table = planTable({ builds: [cleaned] }, { project: 'analytics', dryRun: true, existing });
    expect(table).toContain('Clean plan for analytics (dry run: nothing changed)');
    expect(table).toContain('drops main_ef567890 (exists), main_ef567890_marts (absent)');
  });

  it('says when there is nothing recorded', () => {
    expect(planTable({ builds: [] }, { project: 'analytics', dryRun: true })).toBe(
      'Clean plan for analytics (dry run: nothing changed)\n  no recorded builds',
    );
  });
});

describe('outcomeLines', () => {
  it('gives a line per build acted on, then the totals', () => {
    const outcomes: CleanOutcome[] = [
      { build: cleaned, status: 'cleaned', detail: 'dropped main_ef567890; removed /ws/.dot/ef567890/analytics/dev' },
      { build: kept, status: 'skipped', detail: 'running now' },
    ];
    expect(outcomeLines(outcomes, 3, '/ws')).toEqual([
      '  cleaned ef567890 (dev): dropped main_ef567890; removed .dot/ef567890/analytics/dev',
      '  skipped abcd1234 (dev): running now',
      'Cleaned 1 build(s), kept 3, skipped 1',
    ]);
  });
});
