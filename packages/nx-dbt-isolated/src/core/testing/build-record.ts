import type { BuildRecord } from '../build/records';

/** A succeeded build of `analytics` at commit abcd1234…, with `overrides` applied. */
export function buildRecord(overrides: Partial<BuildRecord> = {}): BuildRecord {
  const commit = 'abcd1234'.padEnd(40, '0');
  return {
    version: 1,
    commit,
    buildId: commit.slice(0, 8),
    ref: 'main',
    project: 'analytics',
    dbtProject: 'analytics',
    target: 'dev',
    command: 'build',
    warehouse: { type: 'duckdb', location: '/ws/warehouse.duckdb' },
    schema: 'main_abcd1234',
    schemas: ['main_abcd1234'],
    status: 'succeeded',
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:01:00.000Z',
    ...overrides,
  };
}

/** A finished build of two schemas whose results hold failures, skips and warnings of each kind. */
export function builtWithFailures(): BuildRecord {
  return buildRecord({
    schemas: ['main_abcd1234', 'main_abcd1234_finance'],
    startedAt: '2026-11-24T10:00:00.000Z',
    endedAt: '2026-11-24T10:00:12.500Z',
    results: {
      byStatus: {},
      byType: {
        model: { success: 7, error: 1, skipped: 2 },
        test: { pass: 8, fail: 1, warn: 1 },
        seed: { success: 3 },
      },
      failures: [
        { node: 'model.analytics.broken', message: 'Binder Error: column x\nmore' },
        { node: 'test.analytics.unique_orders_id', message: 'Got 2 results' },
      ],
    },
  });
}
