import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import type { NxResult } from '../../fixture-workspace/workspace';
import { executeDuckDb, schemasIn } from '../support/duckdb';
import { copyOfFixture, type FixtureCopy } from '../support/fixture-copy';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';

const short = (sha: string) => sha.slice(0, 8);
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);
const SHARED = { 'isolated-build': { options: { sharedSchemas: ['raw'] } } };

describe('source data every build shares: sharedSchemas (e2e/fixtures/shared-raw, DuckDB)', () => {
  let ws: FixtureCopy;
  let first: string;
  let second: string;
  const warehouse = () => join(ws.dir, 'analytics', 'warehouse.duckdb');
  const build = (...args: string[]) => ws.nx(['run', 'analytics:isolated-build', ...args]);
  const rawOrders = () => queryDuckDb(warehouse(), 'select count(*) as rows from raw.raw_orders');
  const totalsAt = (commit: string) =>
    queryDuckDb(warehouse(), `select orders, total from analytics_${short(commit)}.order_totals`);

  beforeAll(() => {
    ws = copyOfFixture('shared-raw');
    first = ws.commit('raw orders seeded into the shared raw schema');
    appendFileSync(join(ws.dir, 'analytics', 'seeds', 'raw_orders.csv'), '4,40\n');
    second = ws.commit('a fourth raw order');
  });
  afterAll(() => ws.remove());

  it('refuses seeds that write to raw while no option names it shared', async () => {
    const refused = await build(`--ref=${first}`);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('seed.analytics.raw_orders → warehouse.raw');
    // Refused before any SQL: the warehouse file was not even made.
    expect(existsSync(warehouse())).toBe(false);
  });

  it('loads a shared seed once: the first build loads it, a build of another commit reads it as it is', async () => {
    ws.writeNxJson('nx-dbt-isolated', SHARED);
    const loaded = await build(`--ref=${first}`);
    expectSuccess(loaded);
    expect(loaded.output).toContain('seeds and snapshots may write to raw');
    expect(loaded.output).not.toContain('loaded already');
    expect(rawOrders()).toEqual([{ rows: 3 }]);
    expect(totalsAt(first)).toEqual([{ orders: 3, total: 60 }]);

    const reused = await build(`--ref=${second}`);
    expectSuccess(reused);
    expect(reused.output).toContain('• shared schemas: raw.raw_orders loaded already, not loaded again');
    expect(rawOrders()).toEqual([{ rows: 3 }]);
    expect(totalsAt(second)).toEqual([{ orders: 3, total: 60 }]);
  });

  it('never loads a shared seed again, with --fullRefresh neither; dropping its table lets the next build load it', async () => {
    const refreshed = await build(`--ref=${second}`, '--fullRefresh', '--skip-nx-cache');
    expectSuccess(refreshed);
    expect(refreshed.output).toContain('• shared schemas: raw.raw_orders loaded already, not loaded again');
    expect(rawOrders()).toEqual([{ rows: 3 }]);
    executeDuckDb(warehouse(), 'drop table raw.raw_orders');
    const reloaded = await build(`--ref=${second}`, '--skip-nx-cache');
    expectSuccess(reloaded);
    expect(reloaded.output).not.toContain('loaded already');
    expect(rawOrders()).toEqual([{ rows: 4 }]);
    expect(totalsAt(second)).toEqual([{ orders: 4, total: 100 }]);
  });

  it("refuses to leave loaded seeds out beside the project's default selector, which dbt would let load them again", async () => {
    writeFileSync(
      join(ws.dir, 'analytics', 'selectors.yml'),
      'selectors:\n  - name: everything\n    default: true\n    definition: "fqn:*"\n',
    );
    const withSelector = ws.commit('a default selector');
    const refused = await build(`--ref=${withSelector}`);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain(
      'nx-dbt-isolated: sharedSchemas leaves the loaded seeds seed.analytics.raw_orders out with --exclude, which dbt ignores beside a selector (the default selector of selectors.yml)',
    );
    expect(rawOrders()).toEqual([{ rows: 4 }]);
    rmSync(join(ws.dir, 'analytics', 'selectors.yml'));
    ws.commit('no default selector');
  });

  it('refuses a model that would write to the shared schema, before any SQL', async () => {
    writeFileSync(
      join(ws.dir, 'analytics', 'models', 'raw_copy.sql'),
      "{{ config(schema='raw') }}\nselect * from {{ ref('raw_orders') }}\n",
    );
    const third = ws.commit('a model into raw');
    const refused = await build(`--ref=${third}`);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('(the shared schemas raw take seeds and snapshots only)');
    expect(refused.output).toContain('model.analytics.raw_copy → warehouse.raw');
    expect(
      queryDuckDb(warehouse(), "select count(*) as n from information_schema.tables where table_name = 'raw_copy'"),
    ).toEqual([{ n: 0 }]);
  });

  it('never drops a shared schema in clean, which drops the builds’ own', async () => {
    const cleaned = await ws.nx(['run', 'analytics:clean', '--all']);
    expectSuccess(cleaned);
    expect(schemasIn(warehouse(), 'analytics_')).toEqual([]);
    expect(rawOrders()).toEqual([{ rows: 4 }]);
  });
});

describe('source data every build shares on PostgreSQL (dbt target pg)', () => {
  // Names of this run's own, so that runs side by side on the one server keep apart.
  const run = `${process.pid}_${Date.now() % 100000}`;
  const shared = `shared_raw_${run}`;
  const schema = `shared_pg_${run}`;
  const env = { SHARED_RAW_SCHEMA: shared, SHARED_RAW_PG_SCHEMA: schema };
  let ws: FixtureCopy;
  let first: string;
  let second: string;
  const build = (...args: string[]) =>
    ws.nx(['run', 'analytics:isolated-build', '--target=pg', `--sharedSchemas=${shared}`, ...args], env);
  const rows = (relation: string) =>
    withPostgres(async (client) => (await client.query(`select count(*)::int as rows from ${relation}`)).rows);

  beforeAll(() => {
    ws = copyOfFixture('shared-raw');
    first = ws.commit('raw orders seeded into the shared raw schema');
    appendFileSync(join(ws.dir, 'analytics', 'seeds', 'raw_orders.csv'), '4,40\n');
    second = ws.commit('a fourth raw order');
  });
  afterAll(async () => {
    ws.remove();
    await dropSchemasStartingWith(shared);
    await dropSchemasStartingWith(schema);
  });

  it('loads a shared seed once, asking PostgreSQL which seeds it holds, and clean leaves the shared schema', async () => {
    expectSuccess(await build(`--ref=${first}`));
    expect(await rows(`${shared}.raw_orders`)).toEqual([{ rows: 3 }]);
    const reused = await build(`--ref=${second}`);
    expectSuccess(reused);
    expect(reused.output).toContain(`• shared schemas: ${shared}.raw_orders loaded already, not loaded again`);
    expect(await rows(`${shared}.raw_orders`)).toEqual([{ rows: 3 }]);
    // The second commit's build read the shared rows as the first build loaded them.
    const totals = await withPostgres(
      async (client) => (await client.query(`select orders::int from ${schema}_${short(second)}.order_totals`)).rows,
    );
    expect(totals).toEqual([{ orders: 3 }]);

    const cleaned = await ws.nx(['run', 'analytics:clean', '--all', '--target=pg'], env);
    expectSuccess(cleaned);
    expect(cleaned.output).toContain(`leaves ${shared}: not under ${schema}_${short(first)}`);
    // main's build is protected from --all; the first commit's went, the shared schema stays.
    expect(await schemasStartingWith(schema)).toEqual([`${schema}_${short(second)}`]);
    expect(await schemasStartingWith(shared)).toEqual([shared]);
  });
});
