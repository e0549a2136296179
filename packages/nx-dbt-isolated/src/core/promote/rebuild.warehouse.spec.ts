import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { buildPaths } from '../workspace/dot-layout';
import type { WarehouseConnection } from '../dbt/operation';
import { applyPromotion, planPromotion, readPromotionState } from './plan';
import { keepingPromotedViews, planRebuild, type PromotedRebuild } from './rebuild';
import { buildRecord } from '../testing/build-record';
import { postgresConnection } from '../testing/dbt-connection';
import { makeTempDir, removeDir } from '../testing/git-repo';

/**
 * The rename, switch and drop of a rebuild on a real PostgreSQL, through dbt. `run` stands for
 * dbt: it makes the new generation the way a build does, in the build's fresh schemas, over a
 * connection of the test's own (a dbt process would only add its start-up to every test).
 */
describe('a rebuild of a promoted build on PostgreSQL, through dbt', () => {
  const base = `nx_spec_rebuild_${randomBytes(4).toString('hex')}`;
  const id = 'abcd1234';
  const own = `${base}_${id}`;
  const retired = `${base}~${id}`;
  const promoted = `${base}_live`;
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  let dir: string;
  let connection: WarehouseConnection;
  let lines: string[];

  const version = async () =>
    (
      await client.query(
        `select (select version from "${promoted}".orders) as orders, (select version from "${promoted}_raw".raw_orders) as raw`,
      )
    ).rows[0] as { orders: number; raw: number };
  const schemas = async () =>
    (
      await client.query<{ name: string }>('select nspname as name from pg_namespace where starts_with(nspname, $1)', [
        base,
      ])
    ).rows
      .map((row) => row.name)
      .sort();
  /** What dbt would make: the build's two schemas with tables of `v`. */
  const generation = (v: number) => [
    `create schema "${own}"`,
    `create schema "${own}_raw"`,
    `create table "${own}_raw".raw_orders as select ${v} as version`,
    `create table "${own}".orders as select * from "${own}_raw".raw_orders`,
  ];
  /** One transaction: PostgreSQL runs a multi-statement query as one. */
  const build = async (v: number) => {
    await client.query(generation(v).join(';\n'));
  };

  /** What build/run-build.ts does around dbt: plan, then run with the views kept. */
  const keep = async (request: PromotedRebuild, run: () => Promise<boolean>, succeeded = (ok: boolean) => ok) =>
    keepingPromotedViews(request, await planRebuild(request), run, succeeded);

  function rebuild(overrides: Partial<PromotedRebuild> = {}): PromotedRebuild {
    const paths = buildPaths(dir, id, 'analytics', 'spec');
    mkdirSync(paths.targetPath, { recursive: true });
    const node = (type: string, name: string, schema: string) => ({
      unique_id: `${type}.analytics.${name}`,
      name,
      resource_type: type,
      schema,
      config: { materialized: 'table' },
    });
    const nodes = [node('model', 'orders', own), node('seed', 'raw_orders', `${own}_raw`)];
    writeFileSync(
      join(paths.targetPath, 'manifest.json'),
      JSON.stringify({ nodes: Object.fromEntries(nodes.map((entry) => [entry.unique_id, entry])) }),
    );
    const record = buildRecord({ schema: own, buildId: id, promoted: [{ schema: promoted, at: 'then' }] });
    return {
      connection,
      warehouseType: 'postgres',
      command: 'build',
      build: { schema: own, buildId: id },
      fullCommand: 'nx run analytics:isolated-build --ref=main',
      promoteCommand: 'nx run analytics:promote',
      rebuilt: { record, paths },
      reporter: { info: (line) => lines.push(line) },
      now: () => new Date('2026-12-01T12:00:00.000Z'),
      ...overrides,
    };
  }

  beforeAll(async () => {
    dir = makeTempDir();
    connection = postgresConnection(dir, base, { threads: 1 });
    await client.connect();
    await build(1);
    const views = [
      { schema: promoted, name: 'orders', sourceSchema: own },
      { schema: `${promoted}_raw`, name: 'raw_orders', sourceSchema: `${own}_raw` },
    ];
    const state = await readPromotionState(connection, [promoted, `${promoted}_raw`]);
    const stamp = { commit: 'a'.repeat(40), project: 'analytics', promotedAs: promoted, at: 'then' };
    await applyPromotion(connection, planPromotion(views, state, promoted), state, stamp, 'postgres');
  }, 300_000);
  beforeEach(() => (lines = []));
  afterAll(async () => {
    for (const schema of await schemas()) await client.query(`drop schema "${schema}" cascade`);
    await client.end();
    removeDir(dir);
  }, 60_000);

  it('moves the generation aside while dbt runs, then switches the views to the new one and drops the old', async () => {
    const during: unknown[] = [];
    const request = rebuild();
    await keep(request, async () => {
      during.push(await schemas(), await version());
      await build(2);
      during.push(await version());
      return true;
    });
    expect(during).toEqual([
      [`${base}_live`, `${base}_live_raw`, retired, `${retired}_raw`],
      { orders: 1, raw: 1 },
      { orders: 1, raw: 1 },
    ]);
    expect(await version()).toEqual({ orders: 2, raw: 2 });
    expect(await schemas()).toEqual([own, `${own}_raw`, `${base}_live`, `${base}_live_raw`]);
    const rows = (await readPromotionState(connection, [])).rows
      .filter((row) => row.promotedAs === promoted)
      .map((row) => [row.schema, row.view, row.sourceSchema]);
    expect(rows.sort()).toEqual([
      [promoted, 'orders', own],
      [`${promoted}_raw`, 'raw_orders', `${own}_raw`],
    ]);
    const at = await client.query(`select distinct promoted_at from "${promoted}".nx_dbt_isolated_promotion`);
    expect(at.rows).toEqual([{ promoted_at: '2026-12-01T12:00:00.000Z' }]);
    expect(request.rebuilt.record.promoted).toEqual([{ schema: promoted, at: '2026-12-01T12:00:00.000Z' }]);
  }, 300_000);

  it('puts the generation the views read back when dbt fails, dropping what it made', async () => {
    const oid = async () => (await client.query(`select '"${own}".orders'::regclass::oid as oid`)).rows[0].oid;
    const before = await oid();
    await keep(rebuild(), async () => {
      await client.query(`create schema "${own}"; create table "${own}".orders as select 3 as version`);
      return false;
    });
    expect(await version()).toEqual({ orders: 2, raw: 2 });
    expect(await oid()).toBe(before);
    expect(await schemas()).toEqual([own, `${own}_raw`, `${base}_live`, `${base}_live_raw`]);
    expect(lines.at(-1)).toMatch(/put the previous build back/);
  }, 300_000);

  it('puts it back and rethrows when dbt throws (a refused or stopped build)', async () => {
    await expect(
      keep(
        rebuild(),
        async () => {
          throw new Error('stopped');
        },
        () => true,
      ),
    ).rejects.toThrow('stopped');
    expect(await version()).toEqual({ orders: 2, raw: 2 });
    expect(await schemas()).toEqual([own, `${own}_raw`, `${base}_live`, `${base}_live_raw`]);
  }, 300_000);

  it('after a rebuild that died mid-way: drops what it left, keeps the generation the views read, and goes on', async () => {
    await client.query(`alter schema "${own}" rename to "${retired}"`);
    await client.query(`alter schema "${own}_raw" rename to "${retired}_raw"`);
    await client.query(`create schema "${own}"`);
    await client.query(`create table "${own}".orders as select 9 as version`);
    const during: unknown[] = [];
    await keep(rebuild(), async () => {
      during.push(await schemas(), await version());
      await build(4);
      return true;
    });
    expect(during).toEqual([[`${base}_live`, `${base}_live_raw`, retired, `${retired}_raw`], { orders: 2, raw: 2 }]);
    expect(await version()).toEqual({ orders: 4, raw: 4 });
    expect(await schemas()).toEqual([own, `${own}_raw`, `${base}_live`, `${base}_live_raw`]);
  }, 300_000);

  it('refuses a partial rebuild before dbt runs, changing nothing', async () => {
    const run = jest.fn(async () => true);
    await expect(keep(rebuild({ partial: '--select' }), run)).rejects.toThrow(
      new RegExp(`^views in ${base}_live, ${base}_live_raw \\(promoted\\) read ${own}, and a --select build`),
    );
    expect(run).not.toHaveBeenCalled();
    expect(await version()).toEqual({ orders: 4, raw: 4 });
    expect(await schemas()).toEqual([own, `${own}_raw`, `${base}_live`, `${base}_live_raw`]);
  }, 300_000);
});
