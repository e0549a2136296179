import type { WarehouseConnection } from '../dbt/operation';
import { applyPromotion, planPromotion, readPromotionState, type PromotedView } from './plan';
import { dropSchemas } from '../warehouse/schema-drop';
import { duckDbConnection, duckDbFile } from '../testing/dbt-connection';
import { queryDuckDb } from '../testing/duckdb';
import { makeTempDir, removeDir } from '../testing/git-repo';

const stamp = (commit: string) => ({ commit, project: 'analytics', promotedAs: 'prod', at: '2026-11-24T00:00:00Z' });
const promoteCommand = 'nx run analytics:promote';
const views = (source: string, names: string[]): PromotedView[] =>
  names.map((name) => ({ schema: 'prod', name, sourceSchema: source }));

/** The plugin's statements go through dbt; the test's own setup and reads open the file directly. */
describe('promotion on a real DuckDB file, through dbt', () => {
  let dir: string;
  let connection: WarehouseConnection;
  const read = (sql: string) => queryDuckDb(duckDbFile(dir), [sql])[0].rows;
  const promote = async (next: PromotedView[], commit: string) => {
    const state = await readPromotionState(connection, ['prod']);
    await applyPromotion(connection, planPromotion(next, state, 'prod'), state, stamp(commit), 'duckdb');
  };

  beforeAll(async () => {
    dir = makeTempDir();
    connection = duckDbConnection(dir);
    queryDuckDb(duckDbFile(dir), [
      'create schema analytics_aaaa',
      'create table analytics_aaaa.orders as select 1 as version',
      'create table analytics_aaaa.old_model as select 1 as version',
      'create schema analytics_bbbb',
      'create table analytics_bbbb.orders as select 2 as version',
      'create table analytics_bbbb.customers as select 2 as version',
    ]);
  }, 60_000);
  afterAll(() => removeDir(dir));

  it('makes the views, then switches them to the next build and drops the view it no longer has', async () => {
    await promote(views('analytics_aaaa', ['old_model', 'orders']), 'a'.repeat(40));
    expect(read('select version from prod.orders')).toEqual([[1]]);

    await promote(views('analytics_bbbb', ['customers', 'orders']), 'b'.repeat(40));
    expect(read('select (select version from prod.orders), (select version from prod.customers)')).toEqual([[2, 2]]);
    expect(
      read("select table_name, table_type from information_schema.tables where table_schema = 'prod' order by 1"),
    ).toEqual([
      ['customers', 'VIEW'],
      ['nx_dbt_isolated_promotion', 'BASE TABLE'],
      ['orders', 'VIEW'],
    ]);
    const state = await readPromotionState(connection, ['prod']);
    expect(state.rows.map((row) => [row.view, row.sourceSchema, row.commit.slice(0, 1)])).toEqual([
      ['customers', 'analytics_bbbb', 'b'],
      ['orders', 'analytics_bbbb', 'b'],
    ]);
  }, 300_000);

  it('leaves the promoted set as it was when a statement of the switch fails', async () => {
    const broken = views('analytics_aaaa', ['orders', 'missing_model']);
    await expect(promote(broken, 'c'.repeat(40))).rejects.toThrow(/the warehouse refused to promote to prod/);
    expect(read('select version from prod.orders')).toEqual([[2]]);
  }, 300_000);

  it('lets clean drop a schema no promoted view reads, and none while one is read', async () => {
    await expect(
      dropSchemas({ ...connection, schemas: ['analytics_aaaa', 'analytics_bbbb'], drop: true, promoteCommand }),
    ).rejects.toThrow(/^promoted views read analytics_bbbb \(by prod\), so no schema was dropped/);
    expect(
      read("select schema_name from information_schema.schemata where schema_name like 'analytics_%' order by 1"),
    ).toEqual([['analytics_aaaa'], ['analytics_bbbb']]);
    await expect(
      dropSchemas({ ...connection, schemas: ['analytics_aaaa'], drop: true, promoteCommand }),
    ).resolves.toEqual(['analytics_aaaa']);
  }, 300_000);
});
