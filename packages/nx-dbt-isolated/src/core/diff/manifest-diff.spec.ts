import { join } from 'node:path';
import { UserError } from '../workspace/errors';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import { thrown } from '../testing/thrown';
import type { ManifestNode } from '../dbt/artifacts';
import { compareManifests, modelsToCompare, readManifest, type DiffManifest } from './manifest-diff';

function node(resourceType: string, name: string, checksum: string, extra: Partial<ManifestNode> = {}): ManifestNode {
  return {
    unique_id: `${resourceType}.analytics.${name}`,
    resource_type: resourceType,
    name,
    schema: 'analytics',
    checksum: { checksum },
    config: { materialized: resourceType === 'model' ? 'table' : resourceType },
    ...extra,
  };
}

function test(name: string, attachedTo: string, kind: string, column: string): ManifestNode {
  return {
    unique_id: `test.analytics.${name}`,
    resource_type: 'test',
    name,
    schema: 'analytics_dbt_test__audit',
    checksum: { checksum: '' },
    test_metadata: { name: kind, kwargs: { column_name: column } },
    column_name: column,
    attached_node: attachedTo,
  };
}

/** With `buildSchema`, the nodes' schemas as an isolated build of that schema has them. */
function manifest(nodes: ManifestNode[], childMap: Record<string, string[]> = {}, buildSchema?: string): DiffManifest {
  const placed = buildSchema
    ? nodes.map((entry) => ({ ...entry, schema: entry.schema.replace(/^analytics/, buildSchema) }))
    : nodes;
  return {
    nodes: Object.fromEntries(placed.map((entry) => [entry.unique_id, entry])),
    child_map: childMap,
    parent_map: {},
  };
}

const NO_CHANGES = { added: [], removed: [], modified: [] };

describe('readManifest', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => removeDir(dir));

  it('reads the nodes and both maps of the graph', () => {
    const orders = node('model', 'orders', 'a');
    writeFiles(dir, {
      'manifest.json': JSON.stringify({
        metadata: { dbt_version: '1.11.0' },
        nodes: { [orders.unique_id]: orders },
        sources: {},
        child_map: { [orders.unique_id]: [] },
        parent_map: { [orders.unique_id]: ['seed.analytics.raw_orders'] },
      }),
    });
    expect(readManifest(join(dir, 'manifest.json'))).toEqual({
      nodes: { 'model.analytics.orders': orders },
      child_map: { 'model.analytics.orders': [] },
      parent_map: { 'model.analytics.orders': ['seed.analytics.raw_orders'] },
    });
  });

  it.each([
    ['is missing', undefined],
    ['is not JSON', '{"nodes": '],
    ['has no nodes', '{"child_map": {}}'],
  ])('throws naming the file when it %s', (_, text) => {
    const file = join(dir, 'target', 'manifest.json');
    if (text !== undefined) writeFiles(dir, { 'target/manifest.json': text });
    const error = thrown(() => readManifest(file));
    expect(error).not.toBeInstanceOf(UserError);
    expect(error.message).toContain(`cannot read the dbt manifest ${file}: `);
  });
});

describe('compareManifests', () => {
  it('finds the models, seeds and snapshots added, removed and modified by checksum', () => {
    const base = manifest([
      node('seed', 'raw_orders', 's1'),
      node('model', 'stg_orders', 'm1'),
      node('model', 'legacy', 'l1'),
      node('snapshot', 'orders_snapshot', 'n1'),
      node('analysis', 'revenue_check', 'x1'),
      test('unique_stg_orders_order_id', 'model.analytics.stg_orders', 'unique', 'order_id'),
    ]);
    const head = manifest([
      node('seed', 'raw_orders', 's2'),
      node('model', 'stg_orders', 'm1'),
      node('model', 'vip_customers', 'v1'),
      node('snapshot', 'orders_snapshot', 'n2'),
      node('analysis', 'revenue_check', 'x2'),
      node('analysis', 'new_analysis', 'y1'),
      {
        ...test('unique_stg_orders_order_id', 'model.analytics.stg_orders', 'unique', 'order_id'),
        checksum: { checksum: 'z' },
      },
    ]);
    expect(compareManifests(base, head)).toEqual({
      added: ['model.analytics.vip_customers'],
      removed: ['model.analytics.legacy'],
      modified: ['seed.analytics.raw_orders', 'snapshot.analytics.orders_snapshot'],
      downstream: {},
    });
  });

  it("lists every transitive child that is not a test from head's graph, and base's for removed nodes", () => {
    const unchanged = [node('model', 'orders', 'o'), node('model', 'customers', 'c')];
    const base = manifest([node('model', 'stg_orders', 'a'), node('model', 'legacy', 'l'), ...unchanged], {
      'model.analytics.legacy': ['exposure.analytics.old_dashboard', 'test.analytics.not_null_legacy_id'],
    });
    const head = manifest([node('model', 'stg_orders', 'b'), ...unchanged], {
      'model.analytics.stg_orders': ['test.analytics.unique_stg_orders_order_id', 'model.analytics.orders'],
      'model.analytics.orders': ['model.analytics.customers', 'unit_test.analytics.orders.test_totals'],
      'model.analytics.customers': ['model.analytics.countries', 'exposure.analytics.dashboard'],
      'model.analytics.countries': ['model.analytics.customers'],
    });
    expect(compareManifests(base, head).downstream).toEqual({
      'model.analytics.legacy': ['exposure.analytics.old_dashboard'],
      'model.analytics.stg_orders': [
        'exposure.analytics.dashboard',
        'model.analytics.countries',
        'model.analytics.customers',
        'model.analytics.orders',
      ],
    });
  });
});

describe('modelsToCompare', () => {
  const base = manifest(
    [
      node('seed', 'raw_orders', 's1'),
      node('model', 'stg_orders', 'm1', { alias: 'orders_staged' }),
      node('model', 'legacy', 'l1'),
      node('model', 'orders', 'o1'),
      node('model', 'customers', 'c1'),
      node('model', 'orders_enriched', 'e1', { config: { materialized: 'ephemeral' } }),
      test('unique_legacy_legacy_id', 'model.analytics.legacy', 'unique', 'legacy_id'),
      test('unique_orders_order_id', 'model.analytics.orders', 'unique', 'order_id'),
    ],
    {},
    'analytics_1a2b3c4d',
  );
  const head = manifest(
    [
      node('seed', 'raw_orders', 's1'),
      node('model', 'stg_orders', 'm2', { alias: 'orders_staged' }),
      node('model', 'orders', 'o1'),
      node('model', 'customers', 'c1', { schema: 'analytics_marts' }),
      node('model', 'vip_customers', 'v1'),
      node('model', 'orders_enriched', 'e2', { config: { materialized: 'ephemeral' } }),
      test('unique_stg_orders_order_id', 'model.analytics.stg_orders', 'unique', 'order_id'),
      test('unique_stg_orders_line', 'model.analytics.stg_orders', 'unique', 'line_id'),
      test('not_null_vip_customers_customer_id', 'model.analytics.vip_customers', 'not_null', 'customer_id'),
      test('unique_orders_customer_id', 'model.analytics.orders', 'unique', 'customer_id'),
    ],
    {},
    'analytics_5e6f7a8b',
  );
  const changes = compareManifests(base, head);

  it('compares the changed models with the relation of each side that has one, leaving ephemeral ones out', () => {
    expect(changes.modified).toContain('model.analytics.orders_enriched');
    expect(modelsToCompare(base, head, changes, [])).toEqual([
      {
        node: 'model.analytics.legacy',
        name: 'legacy',
        change: 'removed',
        base: { schema: 'analytics_1a2b3c4d', identifier: 'legacy' },
        uniqueKey: 'legacy_id',
      },
      {
        node: 'model.analytics.stg_orders',
        name: 'stg_orders',
        change: 'modified',
        base: { schema: 'analytics_1a2b3c4d', identifier: 'orders_staged' },
        head: { schema: 'analytics_5e6f7a8b', identifier: 'orders_staged' },
        uniqueKey: 'line_id',
      },
      {
        node: 'model.analytics.vip_customers',
        name: 'vip_customers',
        change: 'added',
        head: { schema: 'analytics_5e6f7a8b', identifier: 'vip_customers' },
      },
    ]);
  });

  it('adds the selected nodes by name or unique id; a changed one keeps its kind', () => {
    const selected = modelsToCompare(base, head, changes, ['customers', 'seed.analytics.raw_orders', 'stg_orders']);
    expect(selected.map(({ node, change }) => [node, change])).toEqual([
      ['model.analytics.customers', 'selected'],
      ['model.analytics.legacy', 'removed'],
      ['model.analytics.stg_orders', 'modified'],
      ['model.analytics.vip_customers', 'added'],
      ['seed.analytics.raw_orders', 'selected'],
    ]);
    expect(selected[0]).toEqual({
      node: 'model.analytics.customers',
      name: 'customers',
      change: 'selected',
      base: { schema: 'analytics_1a2b3c4d', identifier: 'customers' },
      head: { schema: 'analytics_5e6f7a8b_marts', identifier: 'customers' },
    });
  });

  it("takes the unique key from head's unique tests attached to the model", () => {
    const [orders] = modelsToCompare(base, head, NO_CHANGES, ['orders']);
    expect(orders.uniqueKey).toBe('customer_id');
  });

  it('selects a removed node by name', () => {
    expect(modelsToCompare(base, head, NO_CHANGES, ['legacy']).map(({ change }) => change)).toEqual(['selected']);
  });

  it('names a selection that matches nothing, with close names', () => {
    const error = thrown(() => modelsToCompare(base, head, changes, ['orders', 'stg_order']));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      '--select stg_order names no model, seed or snapshot of either build (did you mean stg_orders?).',
    );
    expect(thrown(() => modelsToCompare(base, head, changes, ['finance'])).message).toBe(
      '--select finance names no model, seed or snapshot of either build.',
    );
  });
});
