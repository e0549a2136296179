import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { executeDuckDb } from '../support/duckdb';
import { queryDuckDb, queryDuckDbAll } from '../../fixture-workspace/duckdb';
import { fixtureRelations } from '../support/fixture-relations';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, startPostgresReader, withPostgres } from '../support/postgres';
import { canonicalRows, fileAt, hasBuildRecord, quoted, readBuildRecord } from '../support/workflows';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * `nx run analytics:promote`: a schema (and its custom-schema siblings) becomes views over the
 * relations of one commit's isolated build, switched in one transaction. c1 is v1.0 with
 * vip_customers (returned orders count); c2 is main's tree on its own branch (they do not, and
 * there is no vip_customers). Neither branch is one clean protects by default.
 */

const short = (sha: string) => sha.slice(0, 8);
const PROMOTION_TABLE = 'nx_dbt_isolated_promotion';

/** nx exited 0; when it did not, the failure shows the end of its output. */
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

/** The lines nx printed that come from the plugin. */
const pluginLines = (result: NxResult) => result.output.split('\n').filter((line) => line.includes('nx-dbt-isolated:'));

/** What three views of two schemas give at once: it tells c1's set from c2's, and a mix from both. */
interface Snapshot {
  orders: number;
  total: string;
  days: number;
}
const C1_SNAPSHOT: Snapshot = { orders: 10, total: '259.49', days: 7 };
const C2_SNAPSHOT: Snapshot = { orders: 8, total: '229.49', days: 6 };
/** One statement over three views in `schema` and `schema_finance`. */
const snapshotSql = (schema: string) =>
  `select
     (select cast(count(*) as integer) from ${quoted(schema)}.stg_orders) as orders,
     (select cast(round(sum(lifetime_value), 2) as varchar) from ${quoted(schema)}.customers) as total,
     (select cast(count(*) as integer) from ${quoted(`${schema}_finance`)}.daily_revenue) as days`;

/** The warehouse as the test reads it, the same way on DuckDB and PostgreSQL. */
interface Warehouse {
  /** Tables and views in exactly these schemas, as `schema.name (VIEW|BASE TABLE)`, sorted. */
  relations(schemas: string[]): Promise<string[]>;
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** The answers to `sqls`, in order, read in one go (one connection, one process on DuckDB). */
  queryAll(sqls: string[]): Promise<Record<string, unknown>[][]>;
  execute(...statements: string[]): Promise<void>;
}

const selectAll = (relation: string) => `select * from ${relation}`;

const RELATIONS_SQL = (schemas: string[]) =>
  `select table_schema || '.' || table_name || ' (' || table_type || ')' as relation
   from information_schema.tables
   where table_schema in (${schemas.map((schema) => `'${schema.replace(/'/g, "''")}'`).join(', ')})
   order by 1`;

function duckDbWarehouse(file: string): Warehouse {
  return {
    relations: async (schemas) =>
      queryDuckDb<{ relation: string }>(file, RELATIONS_SQL(schemas)).map((row) => row.relation),
    query: async (sql) => queryDuckDb(file, sql),
    queryAll: async (sqls) => queryDuckDbAll(file, sqls),
    execute: async (...statements) => executeDuckDb(file, ...statements),
  };
}

const postgresWarehouse: Warehouse = {
  relations: (schemas) =>
    withPostgres(async (client) =>
      (await client.query<{ relation: string }>(RELATIONS_SQL(schemas))).rows.map((row) => row.relation),
    ),
  query: (sql) => withPostgres(async (client) => (await client.query(sql)).rows),
  queryAll: (sqls) =>
    withPostgres(async (client) => {
      const answers: Record<string, unknown>[][] = [];
      for (const sql of sqls) answers.push((await client.query(sql)).rows);
      return answers;
    }),
  execute: (...statements) =>
    withPostgres(async (client) => {
      for (const statement of statements) await client.query(statement);
    }),
};

/** A PostgreSQL session reading the promoted views over and over until stopped. */
const startReader = (schema: string) => startPostgresReader<Snapshot>(snapshotSql(schema));

/** Each snapshot as `c1`, `c2`, or what it was when it is neither; consecutive repeats collapsed. */
function phases(seen: (Snapshot | { error: string })[]): string[] {
  const names = seen.map((snapshot) => {
    const text = JSON.stringify(snapshot);
    if (text === JSON.stringify(C1_SNAPSHOT)) return 'c1';
    if (text === JSON.stringify(C2_SNAPSHOT)) return 'c2';
    return text;
  });
  return names.filter((name, index) => index === 0 || names[index - 1] !== name);
}

interface Variant {
  dbtTarget: 'dev' | 'pg';
  /** The dbt target's own schema: builds land in `<base>_<id>`. */
  base: string;
  /** The schema promoted into, and whether it is named on the command line or left to the default. */
  promoted: string;
  schemaArgs: string[];
  /** A schema where a table promote did not make stands in the way. */
  blocked: string;
  /** A schema a commit with no build yet is promoted to. */
  other: string;
  env: NodeJS.ProcessEnv;
  warehouse(ws: TestWorkspace): Warehouse;
  /** Whether a second session reads during the switch (DuckDB allows one process per file). */
  concurrentReader: boolean;
  cleanUp(): Promise<void>;
}

const pgBase = `nxdbt_promote_${randomBytes(4).toString('hex')}`;
const VARIANTS: [string, Variant][] = [
  [
    'DuckDB (dbt target dev, --schema=live)',
    {
      dbtTarget: 'dev',
      base: 'analytics',
      promoted: 'live',
      schemaArgs: ['--schema=live'],
      blocked: 'blocked',
      other: 'other',
      env: {},
      warehouse: (ws) => duckDbWarehouse(join(ws.dir, 'analytics', 'warehouse.duckdb')),
      concurrentReader: false,
      cleanUp: async () => undefined,
    },
  ],
  [
    "PostgreSQL (dbt target pg, the target's own schema)",
    {
      dbtTarget: 'pg',
      base: pgBase,
      promoted: pgBase,
      schemaArgs: [],
      blocked: `${pgBase}_blocked`,
      other: `${pgBase}_other`,
      env: { ANALYTICS_PG_SCHEMA: pgBase },
      warehouse: () => postgresWarehouse,
      concurrentReader: true,
      cleanUp: () => dropSchemasStartingWith(pgBase),
    },
  ],
];

describe.each(VARIANTS)('promote on %s', (_label, variant) => {
  let ws: TestWorkspace;
  let warehouse: Warehouse;
  let c1: string;
  let c2: string;
  const targetArgs = variant.dbtTarget === 'dev' ? [] : [`--target=${variant.dbtTarget}`];
  const nx = (executor: string, ...args: string[]) =>
    ws.nx(['run', `analytics:${executor}`, ...args, ...targetArgs], variant.env);
  const promote = (ref: string, ...args: string[]) => nx('promote', `--ref=${ref}`, ...args);
  const isolated = (commit: string) => `${variant.base}_${short(commit)}`;
  const s = variant.promoted;
  const promotedSchemas = (schema = s) => [schema, `${schema}_finance`, `${schema}_raw`];
  /** The views promote makes for a build of the fixture, and its table in each schema. */
  const promotedRelations = (extraModels: string[] = []) =>
    [
      ...fixtureRelations(s, extraModels).map((relation) => `${relation} (VIEW)`),
      ...promotedSchemas().map((schema) => `${schema}.${PROMOTION_TABLE} (BASE TABLE)`),
    ].sort();
  /** Every relation of the build of `commit`, as `[view, isolated relation]` pairs. */
  const viewPairs = (commit: string, extraModels: string[] = []) =>
    fixtureRelations(s, extraModels).map((view) => {
      const [schema, name] = view.split('.');
      return [
        `${quoted(schema)}.${quoted(name)}`,
        `${quoted(schema.replace(s, isolated(commit)))}.${quoted(name)}`,
      ] as const;
    });
  /** Each view gives exactly the rows of its relation in the isolated build of `commit`. */
  const expectViewsOver = async (commit: string, extraModels: string[] = []) => {
    const pairs = viewPairs(commit, extraModels);
    const answers = await warehouse.queryAll(pairs.flatMap(([view, relation]) => [relation, view].map(selectAll)));
    pairs.forEach(([view], index) => {
      const rows = canonicalRows(answers[2 * index]);
      expect(rows.length).toBeGreaterThan(0);
      expect({ view, rows: canonicalRows(answers[2 * index + 1]) }).toEqual({ view, rows });
    });
  };
  /** What promote's table says it made in each promoted schema, sorted. */
  const promotionRows = async () => {
    const schemas = promotedSchemas();
    const answers = await warehouse.queryAll(
      schemas.map(
        (schema) => `select view_name, source_schema, commit_sha, project from ${quoted(schema)}.${PROMOTION_TABLE}`,
      ),
    );
    return schemas
      .flatMap((schema, index) =>
        answers[index].map(
          (row) => `${schema}.${row.view_name} <- ${row.source_schema} ${row.commit_sha} ${row.project}`,
        ),
      )
      .sort();
  };
  const expectedPromotionRows = (commit: string, extraModels: string[] = []) =>
    fixtureRelations(s, extraModels)
      .map((view) => {
        const schema = view.split('.')[0];
        return `${view} <- ${schema.replace(s, isolated(commit))} ${commit} analytics`;
      })
      .sort();
  const snapshot = async () => (await warehouse.query(snapshotSql(s)))[0];
  /** Everything promote could touch: the promoted schemas and the build records. */
  const state = async () => ({
    relations: await warehouse.relations([...promotedSchemas(), ...promotedSchemas(variant.blocked)]),
    records: [c1, c2].map((commit) => readBuildRecord(ws.dir, commit, variant.dbtTarget)),
  });
  /** The action the plan gives a view: the first create/replace/drop on a line naming it alone. */
  const planned = (result: NxResult, view: string) => {
    const name = new RegExp(`(?<![0-9A-Za-z_])${view}(?![0-9A-Za-z_])`);
    const line = result.output.split('\n').find((text) => name.test(text) && /\b(create|replace|drop)\b/i.test(text));
    return line?.match(/\b(create|replace|drop)\b/i)?.[1].toLowerCase();
  };

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = variant.warehouse(ws);
    const vip = 'analytics/models/marts/vip_customers.sql';
    c1 = commitBeside(ws.dir, ws.v1, 'promote-c1', 'v1.0 with VIP customers', {
      [vip]: fileAt(ws.dir, ws.featureVip, vip),
    });
    c2 = commitBeside(ws.dir, ws.main, 'promote-c2', "main's tree, on a branch");
  });
  afterAll(async () => {
    await variant.cleanUp();
    ws?.remove();
  });

  it('--dryRun prints a plan of views to create and changes nothing', async () => {
    expectSuccess(await nx('isolated-build', '--ref=promote-c1'));
    expectSuccess(await nx('isolated-build', '--ref=promote-c2'));
    const before = await state();
    expect(before.relations).toEqual([]);

    const dryRun = await promote('promote-c1', ...variant.schemaArgs, '--dryRun');
    expectSuccess(dryRun);
    for (const view of ['orders', 'vip_customers', 'daily_revenue', 'raw_orders']) {
      expect({ view, action: planned(dryRun, view) }).toEqual({ view, action: 'create' });
    }
    expect(await state()).toEqual(before);
  });

  it("promotes c1: the schema and its siblings hold views giving c1's rows, listed in promote's table", async () => {
    const promoted = await promote('promote-c1', ...variant.schemaArgs);
    expectSuccess(promoted);

    expect(await warehouse.relations(promotedSchemas())).toEqual(promotedRelations(['vip_customers']));
    await expectViewsOver(c1, ['vip_customers']);
    expect(await snapshot()).toEqual(C1_SNAPSHOT);
    expect(await promotionRows()).toEqual(expectedPromotionRows(c1, ['vip_customers']));

    const record = readBuildRecord(ws.dir, c1, variant.dbtTarget);
    expect(record.promoted).toEqual([{ schema: s, at: expect.any(String) }]);
    expect(Number.isNaN(Date.parse((record.promoted as { at: string }[])[0].at))).toBe(false);
  });

  it('refuses, in one line and changing nothing, to replace a table promote did not make', async () => {
    const blocked = variant.blocked;
    await warehouse.execute(
      `create schema ${quoted(blocked)}`,
      `create table ${quoted(blocked)}.customers as select 42 as answer`,
    );
    const before = await state();

    const refused = await promote('promote-c1', `--schema=${blocked}`);
    expect(refused.code).toBe(1);
    const lines = pluginLines(refused);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`${blocked}"?\\."?customers\\b`));

    expect(await state()).toEqual(before);
    expect(await warehouse.relations(promotedSchemas(blocked))).toEqual([`${blocked}.customers (BASE TABLE)`]);
    expect(await warehouse.query(`select answer from ${quoted(blocked)}.customers`)).toEqual([{ answer: 42 }]);
  });

  it('--dryRun of c2 plans replacing and dropping views, and changes nothing', async () => {
    const before = await state();
    const dryRun = await promote('promote-c2', ...variant.schemaArgs, '--dryRun');
    expectSuccess(dryRun);
    for (const view of ['orders', 'customers', 'daily_revenue', 'raw_orders']) {
      expect({ view, action: planned(dryRun, view) }).toEqual({ view, action: 'replace' });
    }
    expect({ view: 'vip_customers', action: planned(dryRun, 'vip_customers') }).toEqual({
      view: 'vip_customers',
      action: 'drop',
    });
    expect(await state()).toEqual(before);
    expect(await snapshot()).toEqual(C1_SNAPSHOT);
  });

  it(`promotes c2 over c1 at once${variant.concurrentReader ? ', a reader seeing one set or the other' : ''}, dropping the view c2 lacks`, async () => {
    const reader = variant.concurrentReader ? startReader(s) : undefined;
    // The switch starts once the reader has seen the schema as it was.
    await reader?.started;
    let promoted: NxResult;
    try {
      promoted = await promote('promote-c2', ...variant.schemaArgs);
    } finally {
      await reader?.stop();
    }
    expectSuccess(promoted);

    if (reader) {
      // The reader ran from before the switch to after it: c1's set, then c2's, never a mix, never an error.
      const after = (await withPostgres((client) => client.query<Snapshot>(snapshotSql(s)))).rows[0];
      expect(phases([...reader.seen, after])).toEqual(['c1', 'c2']);
    }

    expect(await warehouse.relations(promotedSchemas())).toEqual(promotedRelations());
    await expectViewsOver(c2);
    expect(await snapshot()).toEqual(C2_SNAPSHOT);
    expect(await promotionRows()).toEqual(expectedPromotionRows(c2));
    // main's columns came along: countries gained average_lifetime_value.
    expect(Object.keys((await warehouse.query(`select * from ${quoted(s)}.countries`))[0])).toContain(
      'average_lifetime_value',
    );

    expect(readBuildRecord(ws.dir, c2, variant.dbtTarget).promoted).toEqual([{ schema: s, at: expect.any(String) }]);
    expect(readBuildRecord(ws.dir, c1, variant.dbtTarget).promoted ?? []).toEqual([]);
  });

  it('clean refuses to remove the promoted build and keeps it under every policy; the old one can go', async () => {
    const refused = await nx('clean', '--ref=promote-c2');
    expect(refused.code).not.toBe(0);
    const lines = pluginLines(refused);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/promoted/i);
    expect(lines[0]).toContain(s);
    expect(hasBuildRecord(ws.dir, c2, variant.dbtTarget)).toBe(true);
    expect(await snapshot()).toEqual(C2_SNAPSHOT);

    const all = await nx('clean', '--all', '--dryRun');
    expectSuccess(all);
    const c2Row = all.output.split('\n').find((line) => line.includes(short(c2)) && /\bkeep\b/i.test(line));
    expect(c2Row).toBeDefined();
    expect(all.output).toContain(`promoted to ${s}`);

    // c1 is promoted nowhere any more: clean removes it, and the views, over c2, do not notice.
    const cleaned = await nx('clean', '--ref=promote-c1');
    expectSuccess(cleaned);
    expect(cleaned.output).toMatch(/Cleaned 1 build/);
    expect(hasBuildRecord(ws.dir, c1, variant.dbtTarget)).toBe(false);
    expect(await warehouse.relations([isolated(c1)])).toEqual([]);
    expect(await snapshot()).toEqual(C2_SNAPSHOT);
    await expectViewsOver(c2);
  });
  it('builds a commit that has no build first, then promotes it', async () => {
    const commit = ws.excludeReturned;
    expect(hasBuildRecord(ws.dir, commit, variant.dbtTarget)).toBe(false);
    const other = variant.other;

    const promoted = await promote(commit, `--schema=${other}`);
    expectSuccess(promoted);
    const record = readBuildRecord(ws.dir, commit, variant.dbtTarget);
    expect(record).toMatchObject({ commit, status: 'succeeded', schema: isolated(commit) });
    expect(record.deferredTo).toBeUndefined();
    expect(record.promoted).toEqual([{ schema: other, at: expect.any(String) }]);

    const views = fixtureRelations(other);
    expect(await warehouse.relations([other, `${other}_finance`, `${other}_raw`])).toEqual(
      [
        ...views.map((view) => `${view} (VIEW)`),
        ...[other, `${other}_finance`, `${other}_raw`].map((schema) => `${schema}.${PROMOTION_TABLE} (BASE TABLE)`),
      ].sort(),
    );
    const answers = await warehouse.queryAll(
      views.flatMap((view) => {
        const [schema, name] = view.split('.');
        const relation = `${quoted(schema.replace(other, isolated(commit)))}.${quoted(name)}`;
        return [`${quoted(schema)}.${quoted(name)}`, relation].map(selectAll);
      }),
    );
    views.forEach((view, index) => {
      expect({ view, rows: canonicalRows(answers[2 * index]) }).toEqual({
        view,
        rows: canonicalRows(answers[2 * index + 1]),
      });
    });
    // Returned orders are left out at this commit; the schema promoted earlier still shows c2.
    expect((await warehouse.query(snapshotSql(other)))[0]).toEqual({ orders: 8, total: '229.49', days: 6 });
    expect(await snapshot()).toEqual(C2_SNAPSHOT);
    expect(readBuildRecord(ws.dir, c2, variant.dbtTarget).promoted).toEqual([{ schema: s, at: expect.any(String) }]);
  });
});
