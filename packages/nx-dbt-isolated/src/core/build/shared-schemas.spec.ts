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
  package_name: 'analytics',
  original_file_path: `seeds/${name}.csv`,
  ...extra,
});

describe('shared schemas', () => {
  it('take seeds and snapshots, by the exact name (dbt-postgres quotes names: RAW is not raw)', () => {
    expect(mayWriteToSharedSchema(node('seed', 'a', 'raw'), ['raw'])).toBe(true);
    expect(mayWriteToSharedSchema(node('snapshot', 'a', 'raw'), ['raw'])).toBe(true);
    expect(mayWriteToSharedSchema(node('seed', 'a', 'RAW'), ['raw'])).toBe(false);
    expect(mayWriteToSharedSchema(node('model', 'a', 'raw'), ['raw'])).toBe(false);
    expect(mayWriteToSharedSchema(node('seed', 'a', 'raw_2'), ['raw'])).toBe(false);
  });

  it('leave out the seeds whose relation a shared schema holds already, each by its package and file', () => {
    const seeds = sharedSeeds(
      [
        node('seed', 'raw_orders', 'raw', { original_file_path: 'seeds/jaffle/raw_orders.csv' }),
        node('seed', 'raw_customers', 'raw', { alias: 'customers', package_name: 'vendor_pkg' }),
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
    expect(args).toEqual(['--exclude', 'resource_type:seed,package:analytics,path:seeds/jaffle/raw_orders.csv']);
    expect(excludeLoadedSeeds(seeds, new Set(['raw.raw_orders', 'raw.customers'])).args).toEqual([
      '--exclude',
      'resource_type:seed,package:analytics,path:seeds/jaffle/raw_orders.csv',
      '--exclude',
      'resource_type:seed,package:vendor_pkg,path:seeds/raw_customers.csv',
    ]);
  });
});
