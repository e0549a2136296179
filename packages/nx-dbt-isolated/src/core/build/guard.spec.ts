import { join } from 'node:path';
import { escapeError, escapingNodes, type IsolationBounds } from './guard';
import { UserError } from '../workspace/errors';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';

const node = (resource_type: string, name: string, schema: string, config: object = {}, database = 'warehouse') => ({
  [`${resource_type}.analytics.${name}`]: {
    unique_id: `${resource_type}.analytics.${name}`,
    name,
    resource_type,
    database,
    schema,
    config: { materialized: 'table', ...config },
  },
});

describe('escapingNodes', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  const bounds: IsolationBounds = { schema: 'analytics_abcd1234', database: 'warehouse', exceptions: [] };
  const manifest = (...nodes: object[]) => {
    writeFiles(dir, { 'manifest.json': JSON.stringify({ nodes: Object.assign({}, ...nodes) }) });
    return join(dir, 'manifest.json');
  };

  it("lets seeds and snapshots write to a shared schema of the target's database, and nothing else", () => {
    const file = manifest(
      node('seed', 'raw_orders', 'raw'),
      node('snapshot', 'orders_history', 'raw', { materialized: 'snapshot' }),
      node('model', 'orders_copy', 'raw'),
      node('seed', 'other', 'landing'),
      node('seed', 'upper', 'RAW'),
      node('seed', 'elsewhere', 'raw', {}, 'prod_db'),
    );
    const shared = { ...bounds, sharedSchemas: ['raw'] };
    const escaping = escapingNodes(file, shared);
    expect(escaping.map(({ uniqueId }) => uniqueId)).toEqual([
      'model.analytics.orders_copy',
      'seed.analytics.elsewhere',
      'seed.analytics.other',
      'seed.analytics.upper',
    ]);
    expect(escapeError(escaping, shared).message).toContain(
      'outside the isolated schema warehouse.analytics_abcd1234 (the shared schemas raw take seeds and snapshots only)',
    );
  });

  it('accepts relations in the isolated schema, its custom siblings and the target database', () => {
    const file = manifest(
      node('model', 'orders', 'analytics_abcd1234'),
      node('model', 'revenue', 'analytics_abcd1234_finance'),
      node('seed', 'countries', 'analytics_abcd1234_raw', {}, 'WAREHOUSE'),
      node('test', 'unique_orders', 'analytics_abcd1234_dbt_test__audit', { store_failures: true }),
    );
    expect(escapingNodes(file, bounds)).toEqual([]);
  });

  it('finds every node that would write to another schema or database, and nothing that writes no relation', () => {
    const file = manifest(
      node('model', 'finance_mart', 'finance'),
      node('model', 'lookalike', 'analytics_abcd1234x'),
      node('model', 'elsewhere', 'analytics_abcd1234', {}, 'production'),
      node('snapshot', 'orders_snapshot', 'snapshots', { materialized: 'snapshot' }),
      node('test', 'audit', 'dbt_test__audit', { store_failures_as: 'table' }),
      node('test', 'not_null', 'anywhere', { store_failures: null }),
      node('model', 'helper', 'anywhere', { materialized: 'ephemeral' }),
      node('analysis', 'report', 'anywhere'),
      node('operation', 'hook', 'anywhere'),
    );
    expect(escapingNodes(file, bounds)).toEqual([
      { uniqueId: 'model.analytics.elsewhere', writesTo: 'production.analytics_abcd1234' },
      { uniqueId: 'model.analytics.finance_mart', writesTo: 'warehouse.finance' },
      { uniqueId: 'model.analytics.lookalike', writesTo: 'warehouse.analytics_abcd1234x' },
      { uniqueId: 'snapshot.analytics.orders_snapshot', writesTo: 'warehouse.snapshots' },
      { uniqueId: 'test.analytics.audit', writesTo: 'warehouse.dbt_test__audit' },
    ]);
  });

  // dbt 1.11 keeps functions (UDFs) in manifest.functions, not manifest.nodes (issue 14, 1.1).
  it('checks functions, which dbt keeps apart from the nodes', () => {
    const functions = {
      ...node('function', 'is_positive_int', 'analytics', { materialized: 'function' }),
      ...node('function', 'safe_divide', 'analytics_abcd1234_udfs', { materialized: 'function' }),
    };
    writeFiles(dir, { 'manifest.json': JSON.stringify({ nodes: {}, functions }) });
    expect(escapingNodes(join(dir, 'manifest.json'), bounds)).toEqual([
      { uniqueId: 'function.analytics.is_positive_int', writesTo: 'warehouse.analytics' },
    ]);
  });

  it('checks every test when dbt stores all failures (--store-failures), whatever their configs say', () => {
    const file = manifest(node('test', 'not_null_orders', 'dbt_test__audit', { store_failures: null }));
    expect(escapingNodes(file, bounds)).toEqual([]);
    expect(escapingNodes(file, bounds, { allTestFailures: true })).toEqual([
      { uniqueId: 'test.analytics.not_null_orders', writesTo: 'warehouse.dbt_test__audit' },
    ]);
  });

  it('lets through the nodes named as exceptions, by unique id or by name', () => {
    const file = manifest(node('model', 'export', 'exports'), node('seed', 'countries', 'reference'));
    expect(escapingNodes(file, { ...bounds, exceptions: ['model.analytics.export', 'countries'] })).toEqual([]);
  });

  it('checks only the schema when the database of the target is unknown', () => {
    const file = manifest(node('model', 'orders', 'analytics_abcd1234', {}, 'other'));
    expect(escapingNodes(file, { ...bounds, database: undefined })).toEqual([]);
  });

  it('refuses to go on without a manifest', () => {
    expect(() => escapingNodes(join(dir, 'missing.json'), bounds)).toThrow(UserError);
  });
});

describe('escapeError', () => {
  it('names each node, where it would write, and the ways out, in one line', () => {
    const error = escapeError([{ uniqueId: 'model.analytics.finance_mart', writesTo: 'warehouse.finance' }], {
      schema: 'analytics_abcd1234',
      database: 'warehouse',
      exceptions: [],
    });
    expect(error.message).toBe(
      'refused to build: 1 node(s) would write outside the isolated schema warehouse.analytics_abcd1234 (model.analytics.finance_mart → warehouse.finance); make generate_schema_name append custom schemas to target.schema for this target, drop +database/target_schema/target_database overrides, name a schema of shared source data in the sharedSchemas option, or list the nodes in the isolationExceptions option if writing there is intended.',
    );
  });
});
