import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { relationsIn, schemasIn } from '../support/duckdb';
import { fixtureRelations } from '../support/fixture-relations';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { fileAt, readBuildRecord } from '../support/workflows';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * Issue 15 parts 2 and 7 (ADR 25): a partial build (a compile, a --select, a slim build) is
 * recorded as partial, so workflows that need the commit's full build build it; a slim build
 * never degrades the full build of its commit, and clean keeps the base a kept slim build reads.
 * DuckDB, dbt target dev; asserts on what the warehouse holds.
 */

const short = (sha: string) => sha.slice(0, 8);
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);
const STG_ORDERS = 'analytics/models/staging/stg_orders.sql';

/**
 * One workspace for both warehouses: builds are kept per dbt target and the PostgreSQL clean
 * names its target, so that test sees none of the DuckDB builds; it shares only their
 * checkouts and dbt deps. (The DuckDB cleans name no target: they run first, before any pg build.)
 */
let ws: TestWorkspace;
/** main with stg_orders (a view) changed: a slim build of it makes a view over its base's seed. */
let change: string;

beforeAll(() => {
  ws = createTestWorkspace();
  const stgOrders = fileAt(ws.dir, ws.main, STG_ORDERS);
  change = commitBeside(ws.dir, ws.main, 'partial-change', 'stg_orders says what it is', {
    [STG_ORDERS]: `-- orders as staged\n${stgOrders}`,
  });
});
afterAll(() => ws?.remove());

describe('partial builds and the builds that read other builds (DuckDB)', () => {
  const warehouse = () => join(ws.dir, 'analytics', 'warehouse.duckdb');
  const schemaOf = (commit: string) => `analytics_${short(commit)}`;
  const build = (...args: string[]) => ws.nx(['run', 'analytics:isolated-build', ...args]);
  const count = (relation: string) =>
    queryDuckDb<{ n: number }>(warehouse(), `select count(*) as n from ${relation}`)[0].n;
  /** The SQL of every view in the schema, to see which schemas it reads. */
  const viewSql = (schema: string) =>
    queryDuckDb<{ sql: string }>(warehouse(), `select sql from duckdb_views() where schema_name = '${schema}'`)
      .map((view) => view.sql)
      .join('\n');

  it('records a --command=compile build as compiled, not built, with no passed counts, and writes nothing', async () => {
    const compiled = await build('--ref=main', '--command=compile');
    expectSuccess(compiled);
    expect(compiled.output).toContain('isolation check: not needed, dbt compile writes no relation');
    expect(compiled.output).toMatch(/contents +compiled, not built \(--command=compile\)/);
    expect(compiled.output).toMatch(/results +\d+ seeds, \d+ models, \d+ tests compiled, none run/);
    expect(compiled.output).not.toMatch(/\d+ passed/);
    expect(readBuildRecord(ws.dir, ws.main).contents).toEqual({
      complete: false,
      partialBecause: '--command=compile',
      variedBy: [],
    });
    expect(schemasIn(warehouse(), schemaOf(ws.main))).toEqual([]);
  });

  it('promote of a commit whose build is a compile builds it in full through Nx first, and the record says full', async () => {
    const promoted = await ws.nx(['run', 'analytics:promote', '--ref=main']);
    expectSuccess(promoted);
    expect(readBuildRecord(ws.dir, ws.main)).toMatchObject({
      command: 'build',
      contents: { complete: true, variedBy: [] },
      status: 'succeeded',
    });
    expect(relationsIn(warehouse(), schemaOf(ws.main))).toEqual(fixtureRelations(schemaOf(ws.main)));
    expect(count('analytics.customers')).toBeGreaterThan(0);
    expect(count('analytics.customers')).toBe(count(`${schemaOf(ws.main)}.customers`));
  });

  it('records a --select build as 2 of the models, and diff against it builds that side in full', async () => {
    const selected = await build('--ref=v1.0', '--select=+stg_customers', '--select=+stg_orders');
    expectSuccess(selected);
    expect(selected.output).toMatch(/contents +2 of \d+ models \(--select\)/);
    expect(readBuildRecord(ws.dir, ws.v1).contents).toMatchObject({ complete: false, partialBecause: '--select' });
    expect(relationsIn(warehouse(), schemaOf(ws.v1))).toEqual([
      `${schemaOf(ws.v1)}.stg_customers`,
      `${schemaOf(ws.v1)}.stg_orders`,
      `${schemaOf(ws.v1)}_raw.raw_customers`,
      `${schemaOf(ws.v1)}_raw.raw_orders`,
    ]);

    const diffed = await ws.nx(['run', 'analytics:diff', '--base=v1.0', '--head=main']);
    expectSuccess(diffed);
    expect(readBuildRecord(ws.dir, ws.v1).contents).toEqual({ complete: true, variedBy: [] });
    expect(relationsIn(warehouse(), schemaOf(ws.v1)).length).toBeGreaterThan(5);
    expect(count(`${schemaOf(ws.v1)}.customers`)).toBeGreaterThan(0);
  });

  it('serves a slim build of main the full build of main: main keeps reading its own relations', async () => {
    const before = relationsIn(warehouse(), schemaOf(ws.main));
    const slim = await build('--ref=main', '--deferTo=v1.0');
    expectSuccess(slim);
    expect(slim.output).toContain("this commit's full build");
    expect(slim.output).toMatch(/contents +the whole project/);
    const record = readBuildRecord(ws.dir, ws.main);
    expect(record.deferredTo).toBeUndefined();
    expect(record.contents).toEqual({ complete: true, variedBy: [] });
    expect(relationsIn(warehouse(), schemaOf(ws.main))).toEqual(before);
    // Not vacuous: main's views read main's own seeds, and none reads v1's.
    expect(viewSql(schemaOf(ws.main))).toContain(`${schemaOf(ws.main)}_raw`);
    expect(viewSql(schemaOf(ws.main))).not.toContain(short(ws.v1));
  });

  it('promote over a --select build of main, whose full build Nx has cached, runs dbt for the full build again', async () => {
    expectSuccess(await build('--ref=main', '--select=+stg_customers', '--select=+stg_orders'));
    expect(readBuildRecord(ws.dir, ws.main).contents).toMatchObject({ complete: false, partialBecause: '--select' });

    // A hit on the full build cached by the first promote would bring back artifacts only, and
    // keep this workspace's own partial record: the nested build skips the cache.
    const promoted = await ws.nx(['run', 'analytics:promote', '--ref=main']);
    expectSuccess(promoted);
    expect(promoted.output).toContain('--skip-nx-cache');
    expect(readBuildRecord(ws.dir, ws.main).contents).toEqual({ complete: true, variedBy: [] });
    expect(relationsIn(warehouse(), schemaOf(ws.main))).toEqual(fixtureRelations(schemaOf(ws.main)));
    expect(count('analytics.customers')).toBe(count(`${schemaOf(ws.main)}.customers`));
  });

  it('a slim build deferred to a --select build of main names the command that makes main full, and that command does', async () => {
    expectSuccess(await build('--ref=main', '--select=stg_customers'));
    const refused = await build(`--ref=${change}`, '--deferTo=main');
    expect(refused.code).not.toBe(0);
    const fix = 'nx run analytics:isolated-build --ref=main --skip-nx-cache';
    expect(refused.output).toContain(`build it in full (${fix}, without --select;`);
    // Without --skip-nx-cache, the command would be a hit of main's cached full build, which keeps the partial record.
    const fixed = await build('--ref=main', '--skip-nx-cache');
    expectSuccess(fixed);
    expect(readBuildRecord(ws.dir, ws.main).contents).toEqual({ complete: true, variedBy: [] });
    expectSuccess(await build(`--ref=${change}`, '--deferTo=main'));
    expect(readBuildRecord(ws.dir, change).deferredTo).toMatchObject({ commit: ws.main });
  });

  it('clean --keep=1 keeps the base of the slim build it keeps, says why, and the slim build still answers', async () => {
    // Its base is a commit no protected ref names, built in full through Nx (--buildBase).
    const base = ws.excludeReturned;
    const slim = await build('--ref=partial-change', `--deferTo=${base}`, '--buildBase');
    expectSuccess(slim);
    expect(slim.output).toMatch(/contents +slim: \d+ models built, \d+ read from analytics_/);
    // The slim build reads its base's relations: its stg_orders is a view over the base's raw_orders.
    expect(relationsIn(warehouse(), schemaOf(change)).length).toBeLessThan(fixtureRelations(schemaOf(change)).length);
    expect(viewSql(schemaOf(change))).toContain(`${schemaOf(base)}_raw`);
    expect(count(`${schemaOf(change)}.stg_orders`)).toBeGreaterThan(0);

    const cleaned = await ws.nx(['run', 'analytics:clean', '--keep=1']);
    expectSuccess(cleaned);
    const baseRow = cleaned.output.split('\n').find((line) => line.startsWith(`  ${short(base)} `));
    expect(baseRow).toMatch(/\bkeep\b/);
    expect(baseRow).toContain(`read by the slim build of partial-change (${short(change)})`);
    expect(schemasIn(warehouse(), schemaOf(base))).toHaveLength(3);
    expect(count(`${schemaOf(change)}.stg_orders`)).toBeGreaterThan(0);
    expect(count('analytics.customers')).toBeGreaterThan(0);

    // A --select build of the same commit leaves the slim build's views in place: the base stays read.
    expectSuccess(await build('--ref=partial-change', '--select=raw_payments'));
    expect(readBuildRecord(ws.dir, change).deferredTo).toBeUndefined();
    const cleanedAgain = await ws.nx(['run', 'analytics:clean', '--keep=1']);
    expectSuccess(cleanedAgain);
    const baseRowAgain = cleanedAgain.output.split('\n').find((line) => line.startsWith(`  ${short(base)} `));
    expect(baseRowAgain).toMatch(/\bkeep\b/);
    expect(baseRowAgain).toContain(`read by what an earlier slim build left in the build of partial-change`);
    expect(schemasIn(warehouse(), schemaOf(base))).toHaveLength(3);
    expect(count(`${schemaOf(change)}.stg_orders`)).toBeGreaterThan(0);
  });
});

describe("clean keeps a kept slim build's base on PostgreSQL, where dropping it cascades (dbt target pg)", () => {
  const base = `nxdbt_partial_${randomBytes(4).toString('hex')}`;
  const env = { ANALYTICS_PG_SCHEMA: base };

  afterAll(() => dropSchemasStartingWith(base));

  it('--keep=1 keeps the base, and the slim build keeps its stg_orders view over the base', async () => {
    const deferTo = ws.excludeReturned;
    const slim = await ws.nx(
      ['run', 'analytics:isolated-build', '--ref=partial-change', `--deferTo=${deferTo}`, '--buildBase', '--target=pg'],
      env,
    );
    expectSuccess(slim);
    const stgOrders = () =>
      withPostgres((client) => client.query(`select count(*)::int as n from "${base}_${short(change)}".stg_orders`));
    expect((await stgOrders()).rows[0].n).toBeGreaterThan(0);

    const cleaned = await ws.nx(['run', 'analytics:clean', '--keep=1', '--target=pg'], env);
    expectSuccess(cleaned);
    expect(cleaned.output).toContain(`read by the slim build of partial-change (${short(change)})`);
    expect(await schemasStartingWith(`${base}_${short(deferTo)}`)).toHaveLength(3);
    expect((await stgOrders()).rows[0].n).toBeGreaterThan(0);
  });
});
