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
