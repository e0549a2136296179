import { compareData, type QueryRunner } from './data-diff';
import type { ChangeKind } from './types';
import type { ModelToCompare } from './manifest-diff';
import { openDuckDb, openPostgres, specSchemaPrefix, type TestWarehouse } from './testing/warehouses';

interface FixtureTable {
  columns: string;
  rows?: string;
}

interface Fixture {
  name: string;
  change: ChangeKind;
  uniqueKey?: string;
  base?: FixtureTable;
  head?: FixtureTable;
}

/** Each warehouse's name for the column types the fixtures use. */
interface TypeNames {
  integer: string;
  varchar: string;
}

const FIXTURES: Fixture[] = [
  {
    name: 'orders',
    change: 'modified',
    uniqueKey: 'order_id',
    base: {
      columns: 'order_id integer, status varchar(20), amount integer, coupon varchar(20), note varchar(20)',
      rows: "(1, 'placed', 10, null, 'x'), (2, 'shipped', 20, 'A', null), (3, 'returned', 30, null, 'y'), (4, null, 40, 'B', 'z')",
    },
    head: {
      columns: 'order_id integer, status varchar(20), amount varchar(20), coupon varchar(20), discount integer',
      rows: "(1, 'placed', '10', null, 0), (2, 'shipped', '25', 'A', null), (4, 'placed', '40', null, 5), (5, 'placed', '50', 'C', null)",
    },
  },
  {
    name: 'customers',
    change: 'modified',
    uniqueKey: 'id',
    base: { columns: 'id integer, name varchar(20)', rows: "(1, 'a'), (2, 'b'), (3, null)" },
    head: { columns: 'id integer, name varchar(20)', rows: "(1, 'a'), (2, 'b'), (2, 'b'), (3, null), (4, 'd')" },
  },
  {
    name: 'payments',
    change: 'modified',
    uniqueKey: 'payment_id',
    base: { columns: 'payment_id integer, method varchar(20)', rows: "(null, 'card'), (1, 'cash'), (2, 'card')" },
    head: { columns: 'payment_id integer, method varchar(20)', rows: "(1, 'cash'), (2, 'card'), (3, 'card')" },
  },
  {
    name: 'events',
    change: 'modified',
    uniqueKey: 'event_id',
    base: { columns: 'event_id integer, kind varchar(20)', rows: "(1, 'a'), (2, 'a'), (3, 'b')" },
    head: { columns: 'id integer, kind varchar(20)', rows: "(1, 'a'), (2, 'b'), (3, 'b')" },
  },
  {
    name: 'daily',
    change: 'modified',
    base: { columns: 'day varchar(20), total integer', rows: "('mon', 10), ('tue', null), ('wed', 30), ('wed', 30)" },
    head: {
      columns: 'day varchar(20), total varchar(20)',
      rows: "('mon', '10'), ('tue', null), ('wed', '30'), ('thu', '5')",
    },
  },
  {
    name: 'countries',
    change: 'selected',
    uniqueKey: 'code',
    base: { columns: 'code varchar(20), name varchar(20)', rows: "('fr', 'France'), ('de', null), ('it', 'Italy')" },
    head: { columns: 'code varchar(20), name varchar(20)', rows: "('it', 'Italy'), ('fr', 'France'), ('de', null)" },
  },
  {
    name: 'empty',
    change: 'modified',
    uniqueKey: 'id',
    base: { columns: 'id integer, label varchar(20)' },
    head: { columns: 'id integer, label varchar(20)' },
  },
  {
    name: 'vip',
    change: 'added',
    uniqueKey: 'customer_id',
    head: { columns: 'customer_id integer, tier varchar(20)', rows: "(1, 'gold'), (2, 'silver')" },
  },
  {
    name: 'legacy',
    change: 'removed',
    base: { columns: 'id integer', rows: '(1), (2), (3)' },
  },
];

/** What comparing each fixture must give, in the warehouse's own type names. */
function expectedDiffs(baseSchema: string, headSchema: string, types: TypeNames) {
  const int = (name: string) => ({ name, type: types.integer });
  const text = (name: string) => ({ name, type: types.varchar });
  const noColumnChanges = { added: [], removed: [], typeChanged: [] };
  const sides = (name: string, baseRows: number, headRows: number) => ({
    base: { relation: `"${baseSchema}"."${name}"`, rows: baseRows },
    head: { relation: `"${headSchema}"."${name}"`, rows: headRows },
  });
  return {
    orders: {
      ...sides('orders', 4, 4),
      columns: {
        added: [int('discount')],
        removed: [text('note')],
        typeChanged: [{ name: 'amount', base: types.integer, head: types.varchar }],
      },
      comparison: { mode: 'key', key: 'order_id', matched: 3, onlyInBase: 1, onlyInHead: 1 },
      valueDifferences: { status: 1, amount: 1, coupon: 1 },
    },
    customers: {
      ...sides('customers', 3, 5),
      columns: noColumnChanges,
      comparison: {
        mode: 'multiset',
        matched: 3,
        onlyInBase: 0,
        onlyInHead: 2,
        note: 'id is not unique in head (1 duplicated value): compared as multisets',
      },
      valueDifferences: { id: 2, name: 2 },
    },
    payments: {
      ...sides('payments', 3, 3),
      columns: noColumnChanges,
      comparison: {
        mode: 'multiset',
        matched: 2,
        onlyInBase: 1,
        onlyInHead: 1,
        note: 'payment_id has nulls in base (1 row): compared as multisets',
      },
      valueDifferences: { payment_id: 2, method: 0 },
    },
    events: {
      ...sides('events', 3, 3),
      columns: { added: [int('id')], removed: [int('event_id')], typeChanged: [] },
      comparison: {
        mode: 'multiset',
        matched: 2,
        onlyInBase: 1,
        onlyInHead: 1,
        note: 'event_id is missing in head: compared as multisets',
      },
      valueDifferences: { kind: 2 },
    },
    daily: {
      ...sides('daily', 4, 4),
      columns: { added: [], removed: [], typeChanged: [{ name: 'total', base: types.integer, head: types.varchar }] },
      comparison: { mode: 'multiset', matched: 3, onlyInBase: 1, onlyInHead: 1 },
      valueDifferences: { day: 2, total: 2 },
    },
    countries: {
      ...sides('countries', 3, 3),
      columns: noColumnChanges,
      comparison: { mode: 'key', key: 'code', matched: 3, onlyInBase: 0, onlyInHead: 0 },
      valueDifferences: { name: 0 },
    },
    empty: {
      ...sides('empty', 0, 0),
      columns: noColumnChanges,
      comparison: { mode: 'key', key: 'id', matched: 0, onlyInBase: 0, onlyInHead: 0 },
      valueDifferences: { label: 0 },
    },
    vip: {
      base: null,
      head: { relation: `"${headSchema}"."vip"`, rows: 2 },
      columns: { added: [int('customer_id'), text('tier')], removed: [], typeChanged: [] },
      comparison: null,
      valueDifferences: {},
    },
    legacy: {
      base: { relation: `"${baseSchema}"."legacy"`, rows: 3 },
      head: null,
      columns: { added: [], removed: [int('id')], typeChanged: [] },
      comparison: null,
      valueDifferences: {},
    },
  };
}

function fixtureStatements(schema: string, side: 'base' | 'head'): string[] {
  return [
    `create schema "${schema}"`,
    ...FIXTURES.flatMap((fixture) => {
      const table = fixture[side];
      if (!table) return [];
      const relation = `"${schema}"."${fixture.name}"`;
      return [
        `create table ${relation} (${table.columns})`,
        ...(table.rows ? [`insert into ${relation} values ${table.rows}`] : []),
      ];
    }),
  ];
}

function modelOf(fixture: Fixture, baseSchema: string, headSchema: string): ModelToCompare {
  return {
    node: `model.analytics.${fixture.name}`,
    name: fixture.name,
    change: fixture.change,
    ...(fixture.base && { base: { schema: baseSchema, identifier: fixture.name } }),
    ...(fixture.head && { head: { schema: headSchema, identifier: fixture.name } }),
    ...(fixture.uniqueKey && { uniqueKey: fixture.uniqueKey }),
  };
}

const WAREHOUSES: { name: string; open: () => Promise<TestWarehouse>; types: TypeNames }[] = [
  { name: 'DuckDB', open: openDuckDb, types: { integer: 'INTEGER', varchar: 'VARCHAR' } },
  { name: 'PostgreSQL', open: openPostgres, types: { integer: 'integer', varchar: 'character varying' } },
];

describe.each(WAREHOUSES)('compareData on $name', ({ open, types }) => {
  let warehouse: TestWarehouse;
  let baseSchema: string;
  let headSchema: string;
  let calls: string[][];
  let run: QueryRunner;

  // compareData only reads: one warehouse with the fixtures serves every test of the describe.
  beforeAll(async () => {
    const prefix = specSchemaPrefix();
    baseSchema = `${prefix}_base`;
    headSchema = `${prefix}_head`;
    warehouse = await open();
    await warehouse.run([...fixtureStatements(baseSchema, 'base'), ...fixtureStatements(headSchema, 'head')]);
  }, 60_000);
  beforeEach(() => {
    calls = [];
    run = (queries) => {
      calls.push(queries);
      return warehouse.run(queries);
    };
  });

  afterAll(async () => {
    await warehouse.run([`drop schema "${baseSchema}" cascade`, `drop schema "${headSchema}" cascade`]);
    await warehouse.close();
  }, 60_000);

  it.each(FIXTURES.map((fixture) => [fixture.name, fixture] as const))('compares %s', async (name, fixture) => {
    const [diff] = await compareData([modelOf(fixture, baseSchema, headSchema)], run);
    const expected = expectedDiffs(baseSchema, headSchema, types)[name as keyof ReturnType<typeof expectedDiffs>];
    expect(diff).toEqual({ node: `model.analytics.${name}`, name, change: fixture.change, ...expected });
  });

  it('compares every model at once in two calls', async () => {
    const diffs = await compareData(
      FIXTURES.map((fixture) => modelOf(fixture, baseSchema, headSchema)),
      run,
    );
    const expected = expectedDiffs(baseSchema, headSchema, types);
    expect(calls).toHaveLength(2);
    expect(
      Object.fromEntries(diffs.map(({ name, node, change, ...rest }) => [name, { node, change, ...rest }])),
    ).toEqual(
      Object.fromEntries(
        FIXTURES.map((fixture) => [
          fixture.name,
          {
            node: `model.analytics.${fixture.name}`,
            change: fixture.change,
            ...expected[fixture.name as keyof typeof expected],
          },
        ]),
      ),
    );
  });
});
