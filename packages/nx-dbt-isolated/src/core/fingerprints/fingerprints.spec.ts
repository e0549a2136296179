import { fingerprintsOf, type FingerprintManifest } from './fingerprints';

/** A small project as dbt's manifest holds it, built into `schema`: a seed, a source, two models, a test. */
function manifestOf(schema: string, changes: { stgOrders?: string; innerMacro?: string; seed?: string } = {}) {
  const manifest: FingerprintManifest = {
    metadata: { dbt_version: '1.11.16', adapter_type: 'duckdb' },
    macros: {
      'macro.analytics.cents': {
        unique_id: 'macro.analytics.cents',
        macro_sql: '{{ round_to(x) }}',
        depends_on: { macros: ['macro.analytics.round_to'] },
      },
      'macro.analytics.round_to': {
        unique_id: 'macro.analytics.round_to',
        macro_sql: changes.innerMacro ?? 'round({{ x }}, 2)',
      },
    },
    sources: {
      'source.analytics.shop.customers': {
        unique_id: 'source.analytics.shop.customers',
        database: 'warehouse',
        schema: 'raw',
        identifier: 'customers',
      },
    },
    nodes: {
      'seed.analytics.raw_orders': {
        unique_id: 'seed.analytics.raw_orders',
        resource_type: 'seed',
        schema: `${schema}_raw`,
        alias: 'raw_orders',
        checksum: { name: 'sha256', checksum: changes.seed ?? 'aaa' },
        config: { schema: 'raw', materialized: 'seed' },
      },
      'model.analytics.stg_orders': {
        unique_id: 'model.analytics.stg_orders',
        resource_type: 'model',
        schema,
        alias: 'stg_orders',
        compiled_code:
          changes.stgOrders ??
          `select round(amount, 2) as amount, customer_id from "warehouse"."${schema}_raw"."raw_orders"`,
        config: { materialized: 'view', 'post-hook': [{ sql: `grant select on ${schema}.stg_orders to bi` }] },
        depends_on: { nodes: ['seed.analytics.raw_orders'], macros: ['macro.analytics.cents'] },
      },
      'model.analytics.customers': {
        unique_id: 'model.analytics.customers',
        resource_type: 'model',
        schema,
        alias: 'customers',
        compiled_code: `select * from "warehouse"."raw"."customers" join "warehouse"."${schema}"."stg_orders" using (customer_id)`,
        config: { materialized: 'table' },
        depends_on: { nodes: ['source.analytics.shop.customers', 'model.analytics.stg_orders'] },
      },
      'test.analytics.not_null_customers_id': {
        unique_id: 'test.analytics.not_null_customers_id',
        resource_type: 'test',
        schema: `${schema}_dbt_test__audit`,
        compiled_code: `select * from "warehouse"."${schema}"."customers" where id is null`,
        config: { severity: 'ERROR' },
        depends_on: { nodes: ['model.analytics.customers'] },
      },
    },
  };
  return manifest;
}

const ALL = [
  'model.analytics.customers',
  'model.analytics.stg_orders',
  'seed.analytics.raw_orders',
  'test.analytics.not_null_customers_id',
];

/** The nodes whose fingerprints differ between two sets. */
const differing = (a: Record<string, string>, b: Record<string, string>) =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((id) => a[id] !== b[id]).sort();

describe('fingerprintsOf', () => {
  const base = fingerprintsOf(manifestOf('analytics_1a2b3c4d'), 'analytics_1a2b3c4d');

  it('gives every node of two builds of the same project the same fingerprint, whatever schema each was built in', () => {
    expect(Object.keys(base).sort()).toEqual(ALL);
    expect(fingerprintsOf(manifestOf('analytics_9f8e7d6c'), 'analytics_9f8e7d6c')).toEqual(base);
  });

  it('changes a changed model and everything downstream of it, and nothing upstream', () => {
    const changed = manifestOf('analytics_9f8e7d6c', { stgOrders: 'select amount, customer_id from somewhere_else' });
    expect(differing(base, fingerprintsOf(changed, 'analytics_9f8e7d6c'))).toEqual([
      'model.analytics.customers',
      'model.analytics.stg_orders',
      'test.analytics.not_null_customers_id',
    ]);
  });

  it('changes the nodes that call a macro when a macro it calls in turn changes', () => {
    const changed = manifestOf('analytics_9f8e7d6c', { innerMacro: 'round({{ x }}, 4)' });
    expect(differing(base, fingerprintsOf(changed, 'analytics_9f8e7d6c'))).toEqual([
      'model.analytics.customers',
      'model.analytics.stg_orders',
      'test.analytics.not_null_customers_id',
    ]);
  });

  it('changes everything a seed feeds when its file changes', () => {
    const changed = manifestOf('analytics_9f8e7d6c', { seed: 'bbb' });
    expect(differing(base, fingerprintsOf(changed, 'analytics_9f8e7d6c'))).toEqual(ALL);
  });

  it('changes the nodes that read a source when its definition changes', () => {
    const changed = manifestOf('analytics_9f8e7d6c');
    changed.sources!['source.analytics.shop.customers'].identifier = 'customers_v2';
    expect(differing(base, fingerprintsOf(changed, 'analytics_9f8e7d6c'))).toEqual([
      'model.analytics.customers',
      'test.analytics.not_null_customers_id',
    ]);
  });

  it('changes every node with the dbt version, whose materializations made them', () => {
    const other = manifestOf('analytics_1a2b3c4d');
    other.metadata!.dbt_version = '1.10.0';
    expect(differing(base, fingerprintsOf(other, 'analytics_1a2b3c4d'))).toEqual(ALL);
  });

  it('vouches for nothing it cannot read, nor for anything built on it', () => {
    const largeSeed = manifestOf('analytics_1a2b3c4d');
    largeSeed.nodes!['seed.analytics.raw_orders'].checksum = { name: 'path', checksum: 'seeds/raw_orders.csv' };
    expect(Object.keys(fingerprintsOf(largeSeed, 'analytics_1a2b3c4d'))).toEqual([]);
    const uncompiled = manifestOf('analytics_1a2b3c4d');
    uncompiled.nodes!['model.analytics.stg_orders'].compiled_code = null;
    expect(Object.keys(fingerprintsOf(uncompiled, 'analytics_1a2b3c4d'))).toEqual(['seed.analytics.raw_orders']);
    const unknownParent = manifestOf('analytics_1a2b3c4d');
    unknownParent.nodes!['model.analytics.customers'].depends_on!.nodes!.push('function.analytics.is_positive');
    expect(Object.keys(fingerprintsOf(unknownParent, 'analytics_1a2b3c4d')).sort()).toEqual([
      'model.analytics.stg_orders',
      'seed.analytics.raw_orders',
    ]);
  });

  it('terminates on macros that call each other', () => {
    const looping = manifestOf('analytics_1a2b3c4d');
    looping.macros!['macro.analytics.round_to'].depends_on = { macros: ['macro.analytics.cents'] };
    expect(Object.keys(fingerprintsOf(looping, 'analytics_1a2b3c4d')).sort()).toEqual(ALL);
  });
});
