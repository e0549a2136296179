import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { queryDuckDb, queryDuckDbAll } from '../../fixture-workspace/duckdb';
import { fixtureRelations } from '../support/fixture-relations';
import { killNxWhen, waitUntilNoProcessUses, type KilledNx } from '../support/kill';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, schemasStartingWith, startPostgresReader, withPostgres } from '../support/postgres';
import { canonicalRows, quoted, readBuildRecord } from '../support/workflows';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * Rebuilding a promoted build (`isolated-build --skip-nx-cache` of the promoted commit). On
 * PostgreSQL dbt replaces a relation by dropping the old one with cascade, which would take the
 * promoted views with it: the plugin moves the old generation aside first, builds the new one,
 * then switches the views to it (docs/promote.md, "Rebuilding a promoted build").
 */

const short = (sha: string) => sha.slice(0, 8);
const PROMOTION_TABLE = 'nx_dbt_isolated_promotion';
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);
const pluginLines = (result: NxResult) => result.output.split('\n').filter((line) => line.includes('nx-dbt-isolated:'));

/** A model that fails when the var `nxdbt_e2e_break` is true: a rebuild of the same commit that fails. */
const FRAGILE_MODEL = `select 1 as ok{% if var('nxdbt_e2e_break', false) %} from nxdbt_e2e_no_such_relation{% endif %}\n`;

/** One statement over views of the promoted schema and its siblings: what a dashboard reads. */
const snapshotSql = (schema: string) =>
  `select
     (select cast(count(*) as integer) from ${quoted(schema)}.stg_orders) as orders,
     (select cast(round(sum(lifetime_value), 2) as varchar) from ${quoted(schema)}.customers) as total,
     (select cast(count(*) as integer) from ${quoted(`${schema}_finance`)}.daily_revenue) as days,
     (select cast(count(*) as integer) from ${quoted(`${schema}_raw`)}.raw_orders) as raw_orders`;

/** A PostgreSQL session reading the promoted views over and over until stopped. */
const startReader = (schema: string) => startPostgresReader<Record<string, unknown>>(snapshotSql(schema), 5);

/** Every distinct answer the reader got, in order of first sight. */
const distinctAnswers = (seen: unknown[]) => [...new Set(seen.map((answer) => JSON.stringify(answer)))];

describe('rebuilding a promoted build on PostgreSQL', () => {
  const base = `nxdbt_rebuild_${randomBytes(4).toString('hex')}`;
  const env = { ANALYTICS_PG_SCHEMA: base };
  let ws: TestWorkspace;
  let fragile: string;
  const nx = (...args: string[]) => ws.nx(['run', ...args, '--target=pg'], env);
  const isolated = (commit: string) => `${base}_${short(commit)}`;
  /** The retired name of a build's schemas, outside every build's own `<schema>_<id>_*`. */
  const retiredPrefix = (commit: string) => `${base}~${short(commit)}`;
  const promotedSchemas = [base, `${base}_finance`, `${base}_raw`];

  /** Each promoted view and the relation it reads, from PostgreSQL's own dependency records. */
  const viewSources = () =>
    withPostgres(async (client) => {
      const result = await client.query<{ view: string; source: string }>(
        `select distinct vn.nspname || '.' || v.relname as view, tn.nspname || '.' || t.relname as source
         from pg_depend d
         join pg_rewrite r on r.oid = d.objid
         join pg_class v on v.oid = r.ev_class
         join pg_namespace vn on vn.oid = v.relnamespace
         join pg_class t on t.oid = d.refobjid and t.oid <> v.oid
         join pg_namespace tn on tn.oid = t.relnamespace
         where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
           and vn.nspname = any($1)
         order by 1, 2`,
        [promotedSchemas],
      );
      return result.rows.map((row) => `${row.view} <- ${row.source}`);
    });
  const expectedSources = (commit: string, extraModels: string[] = []) =>
    fixtureRelations(base, extraModels).map((view) => `${view} <- ${view.replace(base, isolated(commit))}`);
  /** The OID of each relation of the build's schemas: a new generation has new ones. */
  const relationOids = (commit: string) =>
    withPostgres(async (client) => {
      const result = await client.query<{ relation: string; oid: string }>(
        `select n.nspname || '.' || c.relname as relation, c.oid::text as oid
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'v') and (n.nspname = $1 or starts_with(n.nspname, $1 || '_'))
         order by 1`,
        [isolated(commit)],
      );
      return Object.fromEntries(result.rows.map((row) => [row.relation, row.oid]));
    });
  const promotionRows = () =>
    withPostgres(async (client) => {
      const rows: string[] = [];
      for (const schema of promotedSchemas) {
        const result = await client.query(
          `select view_name, source_schema, commit_sha, promoted_as, promoted_at from ${quoted(schema)}.${PROMOTION_TABLE}`,
        );
        rows.push(...result.rows.map((row) => `${schema}.${row.view_name} <- ${row.source_schema} ${row.commit_sha}`));
      }
      return rows.sort();
    });
  const promotedAt = () =>
    withPostgres(
      async (client) =>
        (await client.query(`select distinct promoted_as, promoted_at from ${quoted(base)}.${PROMOTION_TABLE}`)).rows,
    );
  const expectedRows = (commit: string, extraModels: string[] = []) =>
    fixtureRelations(base, extraModels)
      .map((view) => `${view} <- ${view.split('.')[0].replace(base, isolated(commit))} ${commit}`)
      .sort();
  const snapshot = () => withPostgres(async (client) => (await client.query(snapshotSql(base))).rows[0]);
  /** Each view gives exactly the rows of the relation of the same name in the build's schemas. */
  const expectViewsOver = (commit: string, extraModels: string[] = []) =>
    withPostgres(async (client) => {
      for (const view of fixtureRelations(base, extraModels)) {
        const [schema, name] = view.split('.');
        const relation = `${quoted(schema.replace(base, isolated(commit)))}.${quoted(name)}`;
        const rows = (await client.query(`select * from ${relation}`)).rows;
        const viewRows = (await client.query(`select * from ${quoted(schema)}.${quoted(name)}`)).rows;
        expect(rows.length).toBeGreaterThan(0);
        expect({ view, rows: canonicalRows(viewRows) }).toEqual({ view, rows: canonicalRows(rows) });
      }
    });

  beforeAll(() => {
    ws = createTestWorkspace();
    fragile = commitBeside(ws.dir, ws.main, 'promote-rebuild-fragile', 'main with a model a var breaks', {
      'analytics/models/marts/fragile.sql': FRAGILE_MODEL,
    });
  });
  afterAll(async () => {
    await dropSchemasStartingWith(base);
    ws?.remove();
  });

  it("a full rebuild of main's promoted build: a reader never misses an answer, and the views end on the new generation", async () => {
    expectSuccess(await nx('analytics:isolated-build', '--ref=main'));
    expectSuccess(await nx('analytics:promote', '--ref=main'));
    const before = await snapshot();
    expect(before).toEqual({ orders: 8, total: '229.49', days: 6, raw_orders: 10 });
    const oldOids = await relationOids(ws.main);

    const reader = startReader(base);
    await reader.started;
    let rebuilt: NxResult;
    try {
      rebuilt = await nx('analytics:isolated-build', '--ref=main', '--skip-nx-cache');
    } finally {
      await reader.stop();
    }
    expectSuccess(rebuilt);

    // From before dbt started to after the switch: the same answer, never an error or an empty one.
    expect(reader.seen.length).toBeGreaterThan(10);
    expect(distinctAnswers(reader.seen)).toEqual([JSON.stringify(before)]);

    // The views read the new generation: relations of the build's schema with new OIDs.
    expect(await viewSources()).toEqual(expectedSources(ws.main));
    const newOids = await relationOids(ws.main);
    expect(Object.keys(newOids)).toEqual(Object.keys(oldOids));
    for (const relation of Object.keys(newOids)) expect(newOids[relation]).not.toEqual(oldOids[relation]);
    await expectViewsOver(ws.main);
    expect(await schemasStartingWith(retiredPrefix(ws.main))).toEqual([]);

    // The promotion table and the build record agree on what is promoted, and when.
    expect(await promotionRows()).toEqual(expectedRows(ws.main));
    const record = readBuildRecord(ws.dir, ws.main, 'pg');
    expect(record.status).toBe('succeeded');
    expect(record.promoted).toEqual([{ schema: base, at: expect.any(String) }]);
    expect(await promotedAt()).toEqual([
      { promoted_as: base, promoted_at: (record.promoted as { at: string }[])[0].at },
    ]);
  });

  it('refuses --select on the promoted build in one line, before any change', async () => {
    const before = {
      oids: await relationOids(ws.main),
      sources: await viewSources(),
      rows: await promotionRows(),
      record: readBuildRecord(ws.dir, ws.main, 'pg'),
      schemas: await schemasStartingWith(base),
    };

    const refused = await nx('analytics:isolated-build', '--ref=main', '--skip-nx-cache', '--select=customers');
    expect(refused.code).not.toBe(0);
    const lines = pluginLines(refused);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(base);
    expect(lines[0]).toMatch(/--select/);
    expect(lines[0]).toMatch(/without --select/);

    expect({
      oids: await relationOids(ws.main),
      sources: await viewSources(),
      rows: await promotionRows(),
      record: readBuildRecord(ws.dir, ws.main, 'pg'),
      schemas: await schemasStartingWith(base),
    }).toEqual(before);
    expect(await snapshot()).toEqual({ orders: 8, total: '229.49', days: 6, raw_orders: 10 });
  });

  it('a rebuild killed while dbt runs leaves the views reading the old generation; the next build recovers', async () => {
    const before = await snapshot();
    const oids = await relationOids(ws.main);
    const reader = startReader(base);
    await reader.started;
    let killed: KilledNx;
    try {
      killed = await killNxWhen(
        ws.dir,
        ['run', 'analytics:isolated-build', '--ref=main', '--skip-nx-cache', '--target=pg'],
        { output: /\d+ of \d+ OK created/ },
        env,
      );
    } finally {
      await reader.stop();
    }
    expect({ killed: killed.killed, output: killed.killed ? '' : killed.output.slice(-3000) }).toEqual({
      killed: true,
      output: '',
    });
    expect(await waitUntilNoProcessUses(ws.dir)).toEqual([]);
    expect(distinctAnswers(reader.seen)).toEqual([JSON.stringify(before)]);
    // The views read the build moved aside, the very relations; what dbt had begun is under the build's name.
    const retiredSources = expectedSources(ws.main).map((line) =>
      line.replace(` <- ${isolated(ws.main)}`, ` <- ${retiredPrefix(ws.main)}`),
    );
    expect(await viewSources()).toEqual(retiredSources);

    const again = startReader(base);
    await again.started;
    let rebuilt: NxResult;
    try {
      rebuilt = await nx('analytics:isolated-build', '--ref=main', '--skip-nx-cache');
    } finally {
      await again.stop();
    }
    expectSuccess(rebuilt);
    expect(distinctAnswers(again.seen)).toEqual([JSON.stringify(before)]);
    expect(await viewSources()).toEqual(expectedSources(ws.main));
    expect(await schemasStartingWith(retiredPrefix(ws.main))).toEqual([]);
    const newOids = await relationOids(ws.main);
    expect(Object.keys(newOids)).toEqual(Object.keys(oids));
    for (const relation of Object.keys(newOids)) expect(newOids[relation]).not.toEqual(oids[relation]);
    expect(await promotionRows()).toEqual(expectedRows(ws.main));
    expect(readBuildRecord(ws.dir, ws.main, 'pg')).toMatchObject({
      status: 'succeeded',
      promoted: [{ schema: base, at: expect.any(String) }],
    });
  });

  it('a rebuild that fails leaves the promoted views reading the generation they read, which stays', async () => {
    expectSuccess(await nx('analytics:isolated-build', '--ref=promote-rebuild-fragile'));
    expectSuccess(await nx('analytics:promote', '--ref=promote-rebuild-fragile'));
    expect(await viewSources()).toEqual(expectedSources(fragile, ['fragile']));
    const before = await snapshot();
    const oids = await relationOids(fragile);
    const rows = await promotionRows();

    const reader = startReader(base);
    await reader.started;
    let failed: NxResult;
    try {
      failed = await nx(
        'analytics:isolated-build',
        '--ref=promote-rebuild-fragile',
        '--skip-nx-cache',
        '--vars.nxdbt_e2e_break=true',
      );
    } finally {
      await reader.stop();
    }
    expect(failed.code).not.toBe(0);
    expect(failed.output).toContain('nxdbt_e2e_no_such_relation');

    expect(distinctAnswers(reader.seen)).toEqual([JSON.stringify(before)]);
    // The very relations promoted before the rebuild: same OIDs, back under the build's own schemas.
    expect(await relationOids(fragile)).toEqual(oids);
    expect(await viewSources()).toEqual(expectedSources(fragile, ['fragile']));
    expect(await schemasStartingWith(retiredPrefix(fragile))).toEqual([]);
    expect(await promotionRows()).toEqual(rows);
    await expectViewsOver(fragile, ['fragile']);
    const record = readBuildRecord(ws.dir, fragile, 'pg');
    expect(record.promoted).toEqual([{ schema: base, at: expect.any(String) }]);

    // A retry would replace the failed nodes in place, which drops the views reading them: refused.
    const retried = await nx('analytics:isolated-build', '--ref=promote-rebuild-fragile', '--command=retry');
    expect(retried.code).not.toBe(0);
    expect(retried.output).toContain('and a --command=retry build would replace some of its relations in place');
    expect(await relationOids(fragile)).toEqual(oids);
    await expectViewsOver(fragile, ['fragile']);

    // The same rebuild without the var goes through, and the views end on its generation.
    expectSuccess(await nx('analytics:isolated-build', '--ref=promote-rebuild-fragile', '--skip-nx-cache'));
    expect(await viewSources()).toEqual(expectedSources(fragile, ['fragile']));
    expect(await snapshot()).toEqual(before);
    expect(Object.values(await relationOids(fragile))).not.toContain(oids[`${isolated(fragile)}.customers`]);
  });
});

describe('rebuilding a promoted build on DuckDB', () => {
  let ws: TestWorkspace;
  const file = () => join(ws.dir, 'analytics', 'warehouse.duckdb');
  beforeAll(() => {
    ws = createTestWorkspace();
  });
  afterAll(() => ws?.remove());

  it('keeps the promoted views: DuckDB views read relations by name, so they read the rebuilt ones', async () => {
    expectSuccess(await ws.nx(['run', 'analytics:isolated-build', '--ref=main']));
    expectSuccess(await ws.nx(['run', 'analytics:promote', '--ref=main', '--schema=live']));
    const isolated = `analytics_${short(ws.main)}`;
    const views = () =>
      queryDuckDb<{ relation: string }>(
        file(),
        `select table_schema || '.' || table_name as relation from information_schema.tables
         where table_type = 'VIEW' and table_schema in ('live', 'live_finance', 'live_raw') order by 1`,
      ).map((row) => row.relation);
    expect(views()).toEqual(fixtureRelations('live'));

    expectSuccess(await ws.nx(['run', 'analytics:isolated-build', '--ref=main', '--skip-nx-cache']));

    expect(views()).toEqual(fixtureRelations('live'));
    const answers = queryDuckDbAll(
      file(),
      fixtureRelations('live').flatMap((view) => {
        const [schema, name] = view.split('.');
        const relation = `${quoted(schema.replace('live', isolated))}.${quoted(name)}`;
        return [`select * from ${relation}`, `select * from ${quoted(schema)}.${quoted(name)}`];
      }),
    );
    fixtureRelations('live').forEach((view, index) => {
      const rows = answers[2 * index];
      expect(rows.length).toBeGreaterThan(0);
      expect({ view, rows: canonicalRows(answers[2 * index + 1]) }).toEqual({ view, rows: canonicalRows(rows) });
    });
    expect(readBuildRecord(ws.dir, ws.main).promoted).toEqual([{ schema: 'live', at: expect.any(String) }]);
  });
});
