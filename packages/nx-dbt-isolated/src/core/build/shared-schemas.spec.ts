import type { ManifestNode } from '../dbt/artifacts';
import { excludeLoadedSeeds, mayWriteToSharedSchema, sharedSeeds } from './shared-schemas';

const node = (
  resource_type: string,
  name: string,
  schema: string,
  extra: Partial<ManifestNode> = {},
): ManifestNode => ({
  unique_id: `${resource_type}.analytics.${name}`,
  name,
  resource_type,
  schema,
  fqn: ['analytics', name],
  ...extra,
});

describe('shared schemas', () => {
  it('take seeds and snapshots, matched as the warehouse folds names', () => {
    expect(mayWriteToSharedSchema(node('seed', 'a', 'RAW'), ['raw'])).toBe(true);
    expect(mayWriteToSharedSchema(node('snapshot', 'a', 'raw'), ['Raw'])).toBe(true);
    expect(mayWriteToSharedSchema(node('model', 'a', 'raw'), ['raw'])).toBe(false);
    expect(mayWriteToSharedSchema(node('seed', 'a', 'raw_2'), ['raw'])).toBe(false);
  });

  it('leave out the seeds whose relation a shared schema holds already, by their full name', () => {
    const seeds = sharedSeeds(
      [
        node('seed', 'raw_orders', 'raw', { fqn: ['analytics', 'jaffle', 'raw_orders'] }),
        node('seed', 'raw_customers', 'RAW', { alias: 'customers' }),
        node('seed', 'countries', 'analytics_abcd1234'),
        node('model', 'raw_payments', 'raw'),
      ],
      ['raw'],
    );
    expect(seeds.map(({ uniqueId, relation }) => [uniqueId, relation])).toEqual([
      ['seed.analytics.raw_orders', 'raw_orders'],
      ['seed.analytics.raw_customers', 'customers'],
    ]);
    const { loaded, args } = excludeLoadedSeeds(seeds, new Set(['raw.raw_orders', 'raw.other']));
    expect(loaded.map(({ name }) => name)).toEqual(['raw_orders']);
    expect(args).toEqual(['--exclude', 'resource_type:seed,fqn:analytics.jaffle.raw_orders']);
    expect(excludeLoadedSeeds(seeds, new Set(['raw.raw_orders', 'raw.customers'])).args).toHaveLength(4);
  });
});
