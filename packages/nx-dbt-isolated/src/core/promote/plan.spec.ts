import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPaths } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { planPromotion, promotedViews, promotionStatements, type PromotionState } from './plan';
import { buildRecord } from '../testing/build-record';
import { makeTempDir, removeDir } from '../testing/git-repo';

const ISO = 'analytics_abcd1234';

describe('promotedViews', () => {
  let workspaceRoot: string;
  beforeEach(() => (workspaceRoot = makeTempDir()));
  afterEach(() => removeDir(workspaceRoot));

  function buildWithNodes(nodes: object[]) {
    const paths = buildPaths(workspaceRoot, 'abcd1234', 'analytics', 'dev');
    mkdirSync(paths.targetPath, { recursive: true });
    const byId = Object.fromEntries(nodes.map((node) => [(node as { unique_id: string }).unique_id, node]));
    writeFileSync(join(paths.targetPath, 'manifest.json'), JSON.stringify({ nodes: byId }));
    return { record: buildRecord({ schema: ISO, schemas: [ISO, `${ISO}_finance`] }), paths };
  }
  const node = (id: string, schema: string, extra: object = {}) => ({
    unique_id: id,
    name: id.split('.').at(-1),
    resource_type: id.split('.')[0],
    schema,
    config: { materialized: 'table' },
    ...extra,
  });

  it('maps the build schema to --schema and each custom sibling to --schema_<custom>, by alias', () => {
    const build = buildWithNodes([
      node('model.analytics.orders', ISO),
      node('model.analytics.revenue', `${ISO}_finance`, { alias: 'daily_revenue' }),
      node('seed.analytics.raw_orders', `${ISO}_raw`, { config: { materialized: 'seed' } }),
    ]);
    expect(promotedViews(build, 'prod')).toEqual({
      views: [
        { schema: 'prod', name: 'orders', sourceSchema: ISO },
        { schema: 'prod_finance', name: 'daily_revenue', sourceSchema: `${ISO}_finance` },
        { schema: 'prod_raw', name: 'raw_orders', sourceSchema: `${ISO}_raw` },
      ],
      skipped: [],
    });
  });

  it('leaves out tests, ephemeral models, and relations outside the build (an isolation exception)', () => {
    const build = buildWithNodes([
      node('model.analytics.orders', ISO),
      node('model.analytics.helper', ISO, { config: { materialized: 'ephemeral' } }),
      node('test.analytics.unique_orders_id', `${ISO}_audit`, { config: { store_failures: true } }),
      node('model.analytics.export', 'exports'),
    ]);
    expect(promotedViews(build, 'prod')).toEqual({
      views: [{ schema: 'prod', name: 'orders', sourceSchema: ISO }],
      skipped: ["model.analytics.export (in exports, outside the build's schemas)"],
    });
  });

  it('says how to go on when the manifest is gone', () => {
    const paths = buildPaths(workspaceRoot, 'abcd1234', 'analytics', 'dev');
    expect(() => promotedViews({ record: buildRecord(), paths }, 'prod')).toThrow(UserError);
  });
});

describe('planPromotion', () => {
  const views = [
    { schema: 'prod', name: 'orders', sourceSchema: ISO },
    { schema: 'prod', name: 'customers', sourceSchema: ISO },
  ];
  const row = (view: string, promotedAs = 'prod') => ({
    schema: 'prod',
    view,
    sourceSchema: 'analytics_00000000',
    commit: '0'.repeat(40),
    project: 'analytics',
    promotedAs,
  });

  it('creates every view the first time, in schemas it makes', () => {
    expect(planPromotion(views, { relations: [], rows: [] }, 'prod')).toEqual({
      actions: [
        { kind: 'create', view: views[0] },
        { kind: 'create', view: views[1] },
      ],
      schemas: ['prod'],
    });
  });

  it('replaces the views an earlier promotion made and drops those the build no longer has', () => {
    const state: PromotionState = {
      relations: [
        { schema: 'prod', name: 'orders', type: 'VIEW' },
        { schema: 'prod', name: 'old_model', type: 'VIEW' },
        { schema: 'prod', name: PROMOTION_TABLE_NAME, type: 'BASE TABLE' },
      ],
      rows: [row('orders'), row('old_model')],
    };
    expect(planPromotion(views, state, 'prod').actions).toEqual([
      { kind: 'replace', view: views[0] },
      { kind: 'create', view: views[1] },
      { kind: 'drop', view: { schema: 'prod', name: 'old_model' } },
    ]);
  });

  it('never replaces a relation no promotion to that schema made, and names it', () => {
    const state: PromotionState = {
      relations: [{ schema: 'prod', name: 'orders', type: 'BASE TABLE' }],
      // Another promotion (to prod_eu) listing a view of the same name does not make it ours.
      rows: [row('orders', 'prod_eu')],
    };
    expect(() => planPromotion(views, state, 'prod')).toThrow(
      'prod.orders already exists and was not made by a promotion to prod: promotion never replaces a relation it did not make; move it away, or promote to another --schema.',
    );
  });

  it('does not drop a listed view someone has since removed', () => {
    const state = { relations: [], rows: [row('gone')] };
    expect(planPromotion(views, state, 'prod').actions.map((action) => action.kind)).toEqual(['create', 'create']);
  });
});

const PROMOTION_TABLE_NAME = 'nx_dbt_isolated_promotion';

describe('promotionStatements', () => {
  const plan = {
    actions: [
      { kind: 'replace' as const, view: { schema: 'prod', name: 'orders', sourceSchema: ISO } },
      { kind: 'create' as const, view: { schema: 'prod', name: 'o\'dd "name"', sourceSchema: ISO } },
      { kind: 'drop' as const, view: { schema: 'prod_old', name: 'gone' } },
    ],
    schemas: ['prod'],
  };
  const state = {
    relations: [],
    rows: [
      { schema: 'prod_old', view: 'gone', sourceSchema: 'x', commit: 'c', project: 'analytics', promotedAs: 'prod' },
    ],
  };
  const stamp = { commit: 'f'.repeat(40), project: 'analytics', promotedAs: 'prod', at: '2026-11-24T00:00:00.000Z' };

  it('makes schemas and tables, swaps the views and rewrites the promotion rows, quoting every name', () => {
    const table = `"nx_dbt_isolated_promotion"`;
    expect(promotionStatements(plan, state, stamp, 'duckdb')).toEqual([
      'create schema if not exists "prod"',
      `create table if not exists "prod".${table} (view_name varchar, source_schema varchar, commit_sha varchar, project varchar, promoted_as varchar, promoted_at varchar)`,
      'drop view if exists "prod"."orders"',
      `create view "prod"."orders" as select * from "${ISO}"."orders"`,
      `create view "prod"."o'dd ""name""" as select * from "${ISO}"."o'dd ""name"""`,
      'drop view if exists "prod_old"."gone"',
      `delete from "prod".${table} where promoted_as = 'prod'`,
      `insert into "prod".${table} values ('orders', '${ISO}', '${stamp.commit}', 'analytics', 'prod', '${stamp.at}'), ('o''dd "name"', '${ISO}', '${stamp.commit}', 'analytics', 'prod', '${stamp.at}')`,
      `delete from "prod_old".${table} where promoted_as = 'prod'`,
    ]);
  });

  it('on PostgreSQL, first takes every view it replaces or drops at once, without waiting on readers', () => {
    const [lock, ...rest] = promotionStatements(plan, state, stamp, 'postgres');
    expect(lock).toContain('lock table "prod"."orders", "prod_old"."gone" in access exclusive mode nowait;');
    expect(lock).toMatch(/exception when lock_not_available then/);
    expect(rest).toEqual(promotionStatements(plan, state, stamp, 'duckdb'));
  });
});
