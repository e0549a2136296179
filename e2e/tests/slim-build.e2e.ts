import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { relationsIn, schemasIn } from '../support/duckdb';
import { fixtureRelations } from '../support/fixture-relations';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { canonicalRows, cloneTestWorkspace, fileAt, readBuildRecord } from '../support/workflows';
import { withDescendants, type ChildMap } from '../../fixture-workspace/manifest';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * Slim builds: `--deferTo=<base>` builds only `state:modified+` against the base's isolated build
 * and defers every other reference to the base's schema. Compared with a full build of the same
 * commit in a clone of the workspace (same commits, same schema names, its own warehouse).
 */

const short = (sha: string) => sha.slice(0, 8);

/** nx exited 0; when it did not, the failure shows the end of its output. */
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

const CUSTOMERS = 'analytics/models/marts/customers.sql';
const STG_PAYMENTS = 'analytics/models/staging/stg_payments.sql';

describe('slim builds (--deferTo) on DuckDB (dbt target dev)', () => {
  let ws: TestWorkspace;
  /** A clone where the same head commits get full builds, to compare with. */
  let clone: TestWorkspace;
  /** main, with customers' lifetime value counting completed orders only: customers has two children. */
  let customersChange: string;
  /** The commit before main, with vouchers left out of stg_payments: children in two schemas. */
  let paymentsChange: string;
  const warehouseOf = (workspace: TestWorkspace) => join(workspace.dir, 'analytics', 'warehouse.duckdb');
  const targetOf = (workspace: TestWorkspace, commit: string) =>
    join(workspace.dir, '.dot', short(commit), 'analytics', 'dev', 'target');
  const readTarget = <T>(workspace: TestWorkspace, commit: string, file: string): T =>
    JSON.parse(readFileSync(join(targetOf(workspace, commit), file), 'utf8')) as T;
  /** The unique ids of the nodes dbt ran in the build of `commit`, sorted. */
  const ranNodes = (workspace: TestWorkspace, commit: string) =>
    readTarget<{ results: { unique_id: string; status: string }[] }>(workspace, commit, 'run_results.json')
      .results.map((result) => result.unique_id)
      .sort();
  const build = (workspace: TestWorkspace, ...args: string[]) =>
    workspace.nx(['run', 'analytics:isolated-build', ...args]);

  /** The slim build's relations hold, row for row, what the clone's full build of the commit holds. */
  const expectSameRowsAsFullBuild = (relations: string[]) => {
    for (const relation of relations) {
      const sql = `select * from ${relation}`;
      expect({
        relation,
        rows: canonicalRows(queryDuckDb(warehouseOf(ws), sql)),
      }).toEqual({ relation, rows: canonicalRows(queryDuckDb(warehouseOf(clone), sql)) });
    }
    // Not vacuous: the relations compared hold rows.
    expect(
      queryDuckDb<{ n: number }>(warehouseOf(ws), `select count(*) as n from ${relations[0]}`)[0].n,
    ).toBeGreaterThan(0);
  };

  beforeAll(() => {
    ws = createTestWorkspace();
    const customers = fileAt(ws.dir, ws.main, CUSTOMERS);
    const completedOnly = customers.replace(
      'coalesce(sum(o.amount), 0) as lifetime_value',
      "coalesce(sum(case when o.status = 'completed' then o.amount end), 0) as lifetime_value",
    );
    expect(completedOnly).not.toEqual(customers);
    customersChange = commitBeside(ws.dir, ws.main, 'slim-customers', 'Lifetime value of completed orders only', {
      [CUSTOMERS]: completedOnly,
    });
    const payments = fileAt(ws.dir, ws.averagePayment, STG_PAYMENTS);
    paymentsChange = commitBeside(ws.dir, ws.averagePayment, 'slim-payments', 'Vouchers are not payments', {
      [STG_PAYMENTS]: `${payments.trimEnd()}\nwhere method <> 'voucher'\n`,
    });
    clone = cloneTestWorkspace(ws);
  });
  afterAll(() => {
    ws?.remove();
    clone?.remove();
  });

  it('refuses to defer to a commit with no isolated build in one line naming --buildBase, creating nothing', async () => {
    expectSuccess(await build(ws, '--ref=main'));
    const schemasBefore = schemasIn(warehouseOf(ws), 'analytics');
    expect(schemasBefore).toEqual(
      [`analytics_${short(ws.main)}`, `analytics_${short(ws.main)}_finance`, `analytics_${short(ws.main)}_raw`].sort(),
    );
    const relationsBefore = relationsIn(warehouseOf(ws), 'analytics');

    const refused = await build(ws, '--ref=slim-customers', '--deferTo=v1.0');
    expect(refused.code).toBe(1);
    const lines = refused.output.split('\n').filter((line) => line.includes('to defer to'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('nx-dbt-isolated:');
    expect(lines[0]).toContain('--buildBase');
    expect(lines[0]).toContain('v1.0');
    expect(lines[0]).toContain(short(ws.v1));
    expect(lines[0]).toMatch(/no isolated build of analytics at v1\.0 .*for dbt target dev to defer to/);
    expect(refused.output).not.toContain('Running with dbt');

    // Nothing in the warehouse: no schema of the head, none of the base.
    expect(schemasIn(warehouseOf(ws), 'analytics')).toEqual(schemasBefore);
    expect(relationsIn(warehouseOf(ws), 'analytics')).toEqual(relationsBefore);
    expect(existsSync(join(ws.dir, '.dot', short(ws.v1), 'analytics', 'dev', 'build.json'))).toBe(false);
  });

  it('builds only the changed model and its children into the head schema, deferring the rest to the base', async () => {
    const slim = await build(ws, '--ref=slim-customers', '--deferTo=main');
    expectSuccess(slim);
    expect(slim.output).toContain(
      `slim build: state:modified+ against ${ws.main.slice(0, 12)} (main), deferring to schema analytics_${short(ws.main)}`,
    );

    // A full build of the same commit, elsewhere, to compare with.
    expectSuccess(await build(clone, `--ref=${customersChange}`));
    const manifest = readTarget<ChildMap>(clone, customersChange, 'manifest.json');
    const expected = withDescendants(manifest, 'model.analytics.customers');
    // What that is, spelled out: customers, its two children, and customers' two tests.
    expect(expected.filter((id) => !id.startsWith('test.'))).toEqual([
      'model.analytics.countries',
      'model.analytics.customer_averages',
      'model.analytics.customers',
    ]);
    expect(expected.filter((id) => id.startsWith('test.')).map((id) => id.split('.')[2])).toEqual([
      'not_null_customers_customer_id',
      'unique_customers_customer_id',
    ]);

    expect(ranNodes(ws, customersChange)).toEqual(expected);
    const results = readTarget<{ results: { unique_id: string; status: string }[] }>(
      ws,
      customersChange,
      'run_results.json',
    ).results;
    expect(results.filter((result) => !['success', 'pass'].includes(result.status))).toEqual([]);

    // The head schema holds those three relations and nothing else: no staging, no seeds, no finance.
    const head = `analytics_${short(customersChange)}`;
    expect(relationsIn(warehouseOf(ws), head)).toEqual(
      [`${head}.countries`, `${head}.customer_averages`, `${head}.customers`].sort(),
    );
    // The base is as it was.
    expect(relationsIn(warehouseOf(ws), `analytics_${short(ws.main)}`)).toEqual(
      fixtureRelations(`analytics_${short(ws.main)}`),
    );

    const record = readBuildRecord(ws.dir, customersChange);
    expect(record).toMatchObject({
      commit: customersChange,
      status: 'succeeded',
      schema: head,
      deferredTo: { commit: ws.main, ref: 'main', schema: `analytics_${short(ws.main)}` },
    });
  });

  it("the slim build's relations hold what a full build of the head commit holds", () => {
    const head = `analytics_${short(customersChange)}`;
    expectSameRowsAsFullBuild([`${head}.customers`, `${head}.customer_averages`, `${head}.countries`]);
    // And what the commit computes: only completed orders count (main: 51.99 and 15 for customers 3 and 6).
    expect(
      queryDuckDb(
        warehouseOf(ws),
        `select customer_id, lifetime_value from ${head}.customers where customer_id in (3, 6) order by 1`,
      ),
    ).toEqual([
      { customer_id: 3, lifetime_value: 42 },
      { customer_id: 6, lifetime_value: 0 },
    ]);
    expect(
      queryDuckDb(
        warehouseOf(ws),
        `select customer_id, lifetime_value from analytics_${short(ws.main)}.customers where customer_id in (3, 6) order by 1`,
      ),
    ).toEqual([
      { customer_id: 3, lifetime_value: 51.99 },
      { customer_id: 6, lifetime_value: 15 },
    ]);
  });

  it('--buildBase builds a missing base first, then the slim build against it', async () => {
    expect(existsSync(join(ws.dir, '.dot', short(ws.averagePayment)))).toBe(false);

    const slim = await build(ws, '--ref=slim-payments', `--deferTo=${ws.averagePayment}`, '--buildBase');
    expectSuccess(slim);

    // The base: a full build, not a slim one, with every relation of the fixture.
    const base = `analytics_${short(ws.averagePayment)}`;
    const baseRecord = readBuildRecord(ws.dir, ws.averagePayment);
    expect(baseRecord).toMatchObject({ commit: ws.averagePayment, status: 'succeeded', schema: base });
    expect(baseRecord.deferredTo).toBeUndefined();
    expect(relationsIn(warehouseOf(ws), base)).toEqual(fixtureRelations(base));

    // The slim build: stg_payments and everything downstream, in the head schema and its finance sibling.
    const head = `analytics_${short(paymentsChange)}`;
    expect(readBuildRecord(ws.dir, paymentsChange)).toMatchObject({
      commit: paymentsChange,
      status: 'succeeded',
      schema: head,
      deferredTo: { commit: ws.averagePayment, ref: ws.averagePayment, schema: base },
    });
    const rebuilt = [
      `${head}.countries`,
      `${head}.customer_averages`,
      `${head}.customers`,
      `${head}.orders`,
      `${head}.stg_payments`,
      `${head}_finance.daily_revenue`,
      `${head}_finance.payments_by_method`,
    ];
    expect(relationsIn(warehouseOf(ws), head)).toEqual(rebuilt);

    expectSuccess(await build(clone, `--ref=${paymentsChange}`));
    const manifest = readTarget<ChildMap>(clone, paymentsChange, 'manifest.json');
    const expected = withDescendants(manifest, 'model.analytics.stg_payments');
    expect(expected.filter((id) => id.startsWith('model.')).length).toBe(rebuilt.length);
    expect(ranNodes(ws, paymentsChange)).toEqual(expected);
    expectSameRowsAsFullBuild(rebuilt);

    // Vouchers are gone from every rebuilt relation: order 2 is 30.00, not 40.00.
    expect(queryDuckDb(warehouseOf(ws), `select method from ${head}_finance.payments_by_method order by 1`)).toEqual([
      { method: 'bank_transfer' },
      { method: 'card' },
    ]);
    expect(queryDuckDb(warehouseOf(ws), `select amount from ${head}.orders where order_id = 2`)).toEqual([
      { amount: 30 },
    ]);
  });
  it('caches a slim build under its base: the same again is a cache hit, another base runs dbt again', async () => {
    const again = await build(ws, '--ref=slim-customers', '--deferTo=main');
    expectSuccess(again);
    // (Nx replays the cached output, dbt's lines included.)
    expect(again.output).toMatch(/Nx read the output from the cache/);

    // averagePayment was built as a base above; its difference to the head is the same one model.
    const otherBase = await build(ws, '--ref=slim-customers', `--deferTo=${ws.averagePayment}`);
    expectSuccess(otherBase);
    expect(otherBase.output).not.toMatch(/Nx read the output from the cache/);
    expect(otherBase.output).toContain('Running with dbt');
    expect(readBuildRecord(ws.dir, customersChange)).toMatchObject({
      status: 'succeeded',
      deferredTo: {
        commit: ws.averagePayment,
        ref: ws.averagePayment,
        schema: `analytics_${short(ws.averagePayment)}`,
      },
    });
    expect(ranNodes(ws, customersChange).filter((id) => id.startsWith('model.'))).toEqual([
      'model.analytics.countries',
      'model.analytics.customer_averages',
      'model.analytics.customers',
    ]);
  });
  it('--select replaces state:modified+ and still defers every other reference to the base', async () => {
    const selected = await build(ws, '--ref=slim-customers', '--deferTo=main', '--select=countries');
    expectSuccess(selected);
    expect(ranNodes(ws, customersChange)).toEqual(['model.analytics.countries']);
    expect(readBuildRecord(ws.dir, customersChange)).toMatchObject({
      status: 'succeeded',
      deferredTo: { commit: ws.main, ref: 'main', schema: `analytics_${short(ws.main)}` },
    });
    // countries read customers from main's schema: lifetime values of every order, not completed ones only.
    expect(
      queryDuckDb(
        warehouseOf(ws),
        `select country, lifetime_value from analytics_${short(customersChange)}.countries order by 1`,
      ),
    ).toEqual(
      queryDuckDb(
        warehouseOf(ws),
        `select country, lifetime_value from analytics_${short(ws.main)}.countries order by 1`,
      ),
    );
  });

  it('refuses a base whose own build is slim, in one line, running nothing', async () => {
    const before = relationsIn(warehouseOf(ws), 'analytics');
    const refused = await build(ws, '--ref=slim-payments', '--deferTo=slim-customers');
    expect(refused.code).toBe(1);
    const lines = refused.output.split('\n').filter((line) => line.includes('nx-dbt-isolated:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('slim-customers');
    expect(refused.output).not.toContain('Running with dbt');
    expect(relationsIn(warehouseOf(ws), 'analytics')).toEqual(before);
  });
});
