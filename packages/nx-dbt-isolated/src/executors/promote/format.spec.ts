import { planLines } from './format';
import type { PromoteResult } from '../../core/promote/promote-commit';

const result = {
  build: { record: { project: 'analytics', commit: 'abcd1234'.padEnd(40, '0'), target: 'dev' } },
  promotedAs: 'prod',
  plan: {
    actions: [
      { kind: 'replace', view: { schema: 'prod', name: 'orders', sourceSchema: 'analytics_abcd1234' } },
      { kind: 'create', view: { schema: 'prod_finance', name: 'revenue', sourceSchema: 'analytics_abcd1234_finance' } },
      { kind: 'drop', view: { schema: 'prod', name: 'old_model' } },
    ],
    schemas: ['prod', 'prod_finance'],
  },
  skipped: ["model.analytics.export (in exports, outside the build's schemas)"],
} as unknown as PromoteResult;

describe('planLines', () => {
  it('lists each view with what it reads, the skipped relations, and whether anything changed', () => {
    expect(planLines(result, 'v1.2', true)).toEqual([
      'Plan to promote analytics at v1.2 (abcd12340000, dbt target dev) to prod:',
      '  replace prod.orders  <- analytics_abcd1234.orders',
      '  create  prod_finance.revenue  <- analytics_abcd1234_finance.revenue',
      '  drop    prod.old_model',
      "  skipped model.analytics.export (in exports, outside the build's schemas)",
      'Dry run: nothing changed. Run again without --dryRun to switch every view in one transaction.',
    ]);
    expect(planLines(result, 'v1.2', false).at(-1)).toBe(
      '2 views made, 1 dropped in one transaction; the build is marked promoted, so clean keeps it.',
    );
  });
});
