import { compareData, type QueryResult, type QueryRunner } from './data-diff';
import type { ModelToCompare } from './manifest-diff';

interface FakeRelation {
  columns: [string, string][];
  /** Row count, then with a key its null count and duplicated-value count. */
  stats: unknown[];
  /** The row of the comparison query, for a relation compared as base. */
  comparison?: unknown[];
}

/**
 * Answers the diff's queries from canned facts per quoted relation, the way the warehouse
 * would, and records every call.
 */
function fakeWarehouse(relations: Record<string, FakeRelation>) {
  const calls: string[][] = [];
  const relationIn = (query: string) => {
    const columnsOf = /table_schema = '([^']*)' and table_name = '([^']*)'/.exec(query);
    const name = columnsOf ? `"${columnsOf[1]}"."${columnsOf[2]}"` : /from ("[^"]*"\."[^"]*")/.exec(query)?.[1];
    const relation = name === undefined ? undefined : relations[name];
    if (!relation) throw new Error(`no such relation in ${query}`);
    return relation;
  };
  const answer = (query: string): QueryResult => {
    const relation = relationIn(query);
    if (query.startsWith('select column_name'))
      return { columns: ['column_name', 'data_type'], rows: relation.columns };
    if (query.includes('only_in_base')) return { columns: [], rows: [relation.comparison ?? []] };
    return { columns: [], rows: [relation.stats] };
  };
  const run: QueryRunner = async (queries) => {
    calls.push(queries);
    return queries.map(answer);
  };
  return { run, calls };
}

function model(name: string, change: ModelToCompare['change'], extra: Partial<ModelToCompare> = {}): ModelToCompare {
  return {
    node: `model.analytics.${name}`,
    name,
    change,
    ...(change !== 'added' && { base: { schema: 'base', identifier: name } }),
    ...(change !== 'removed' && { head: { schema: 'head', identifier: name } }),
    ...extra,
  };
}

const ORDERS_COLUMNS: [string, string][] = [
  ['order_id', 'INTEGER'],
  ['status', 'VARCHAR'],
];

describe('compareData', () => {
  it('asks nothing when there is nothing to compare', async () => {
    const warehouse = fakeWarehouse({});
    await expect(compareData([], warehouse.run)).resolves.toEqual([]);
    expect(warehouse.calls).toEqual([]);
  });

  it('describes only the side that exists of added and removed models, in one call', async () => {
    const warehouse = fakeWarehouse({
      '"head"."vip"': { columns: [['customer_id', 'INTEGER']], stats: ['2'] },
      '"base"."legacy"': { columns: [['id', 'BIGINT']], stats: [3n] },
    });
    const diffs = await compareData(
      [model('legacy', 'removed', { uniqueKey: 'id' }), model('vip', 'added', { uniqueKey: 'customer_id' })],
      warehouse.run,
    );
    expect(warehouse.calls).toHaveLength(1);
    expect(warehouse.calls[0].filter((query) => query.includes('null_keys'))).toEqual([]);
    expect(diffs).toEqual([
      {
        node: 'model.analytics.legacy',
        name: 'legacy',
        change: 'removed',
        base: { relation: '"base"."legacy"', rows: 3 },
        head: null,
        columns: { added: [], removed: [{ name: 'id', type: 'BIGINT' }], typeChanged: [] },
        comparison: null,
        valueDifferences: {},
      },
      {
        node: 'model.analytics.vip',
        name: 'vip',
        change: 'added',
        base: null,
        head: { relation: '"head"."vip"', rows: 2 },
        columns: { added: [{ name: 'customer_id', type: 'INTEGER' }], removed: [], typeChanged: [] },
        comparison: null,
        valueDifferences: {},
      },
    ]);
  });

  it('asks about every model in one call, then compares every model in a second', async () => {
    const warehouse = fakeWarehouse({
      '"base"."orders"': { columns: ORDERS_COLUMNS, stats: [4, 0, 0], comparison: [3, 1, 0, 2] },
      '"head"."orders"': { columns: ORDERS_COLUMNS, stats: [3, 0, 0] },
      '"base"."countries"': { columns: [['code', 'VARCHAR']], stats: [5], comparison: [5, 0, 0, 0] },
      '"head"."countries"': { columns: [['code', 'VARCHAR']], stats: [5] },
      '"head"."vip"': { columns: [['id', 'INTEGER']], stats: [1] },
    });
    const diffs = await compareData(
      [model('countries', 'selected'), model('orders', 'modified', { uniqueKey: 'order_id' }), model('vip', 'added')],
      warehouse.run,
    );
    expect(warehouse.calls.map((queries) => queries.length)).toEqual([10, 2]);
    expect(warehouse.calls[1][0]).toContain('with both_sides as');
    expect(warehouse.calls[1][1]).toContain('full join');
    expect(diffs.map(({ name, comparison, valueDifferences }) => [name, comparison, valueDifferences])).toEqual([
      ['countries', { mode: 'multiset', matched: 5, onlyInBase: 0, onlyInHead: 0 }, { code: 0 }],
      ['orders', { mode: 'key', key: 'order_id', matched: 3, onlyInBase: 1, onlyInHead: 0 }, { status: 2 }],
      ['vip', null, {}],
    ]);
  });

  it('takes counts given as numbers, strings of digits or bigints', async () => {
    const warehouse = fakeWarehouse({
      '"base"."orders"': { columns: ORDERS_COLUMNS, stats: ['4', '0', 0n], comparison: ['3', 1n, 0, '12'] },
      '"head"."orders"': { columns: ORDERS_COLUMNS, stats: [3n, 0, '0'] },
    });
    const [diff] = await compareData([model('orders', 'modified', { uniqueKey: 'order_id' })], warehouse.run);
    expect([diff.base?.rows, diff.head?.rows]).toEqual([4, 3]);
    expect(diff.comparison).toEqual({ mode: 'key', key: 'order_id', matched: 3, onlyInBase: 1, onlyInHead: 0 });
    expect(diff.valueDifferences).toEqual({ status: 12 });
  });

  it('matches columns regardless of case and compares a column whose type changed as text', async () => {
    const warehouse = fakeWarehouse({
      '"base"."orders"': {
        columns: [
          ['Order_ID', 'INTEGER'],
          ['Amount', 'INTEGER'],
          ['note', 'VARCHAR'],
        ],
        stats: [2, 0, 0],
        comparison: [2, 0, 0, 1],
      },
      '"head"."orders"': {
        columns: [
          ['order_id', 'INTEGER'],
          ['amount', 'DOUBLE'],
          ['discount', 'DOUBLE'],
        ],
        stats: [2, 0, 0],
      },
    });
    const [diff] = await compareData([model('orders', 'modified', { uniqueKey: 'ORDER_ID' })], warehouse.run);
    expect(diff.columns).toEqual({
      added: [{ name: 'discount', type: 'DOUBLE' }],
      removed: [{ name: 'note', type: 'VARCHAR' }],
      typeChanged: [{ name: 'amount', base: 'INTEGER', head: 'DOUBLE' }],
    });
    expect(diff.comparison).toMatchObject({ mode: 'key', key: 'order_id' });
    expect(diff.valueDifferences).toEqual({ amount: 1 });
    const comparison = warehouse.calls[1][0];
    expect(comparison).toContain(
      '(select "Order_ID" as key_value, cast("Amount" as varchar) as c0 from "base"."orders")',
    );
    expect(comparison).toContain(
      '(select "order_id" as key_value, cast("amount" as varchar) as c0 from "head"."orders")',
    );
  });

  it.each([
    [[2, 2, 0], [2, 0, 3], 'order_id has nulls in base (2 rows) and is not unique in head (3 duplicated values)'],
    [[2, 1, 1], [2, 0, 0], 'order_id has nulls in base (1 row) and is not unique in base (1 duplicated value)'],
  ])('compares as multisets, saying why, when the key has nulls or duplicates', async (baseStats, headStats, why) => {
    const warehouse = fakeWarehouse({
      '"base"."orders"': { columns: ORDERS_COLUMNS, stats: baseStats, comparison: [1, 1, 1, 1, 0] },
      '"head"."orders"': { columns: ORDERS_COLUMNS, stats: headStats },
    });
    const [diff] = await compareData([model('orders', 'modified', { uniqueKey: 'order_id' })], warehouse.run);
    expect(diff.comparison).toEqual({
      mode: 'multiset',
      matched: 1,
      onlyInBase: 1,
      onlyInHead: 1,
      note: `${why}: compared as multisets`,
    });
    expect(diff.valueDifferences).toEqual({ order_id: 1, status: 0 });
    expect(warehouse.calls[1][0]).not.toContain('full join');
  });

  it('compares as multisets when a side lacks the key column, whatever its counts say', async () => {
    const warehouse = fakeWarehouse({
      '"base"."orders"': { columns: [['status', 'VARCHAR']], stats: [2, 0, 1], comparison: [2, 0, 0, 0] },
      '"head"."orders"': { columns: [['status', 'VARCHAR']], stats: [2, 0, 1] },
    });
    const [diff] = await compareData([model('orders', 'modified', { uniqueKey: 'order_id' })], warehouse.run);
    expect(diff.comparison).toEqual({
      mode: 'multiset',
      matched: 2,
      onlyInBase: 0,
      onlyInHead: 0,
      note: 'order_id is missing in base and head: compared as multisets',
    });
  });

  it('quotes names in identifiers and string literals', async () => {
    const warehouse = fakeWarehouse({});
    const run: QueryRunner = async (queries) => {
      warehouse.calls.push(queries);
      return queries.map(() => ({ columns: [], rows: [[1]] }));
    };
    const odd = { schema: 'we"ird', identifier: "o'neil" };
    await compareData([{ ...model('oneil', 'added'), head: odd }], run);
    expect(warehouse.calls[0]).toEqual([
      expect.stringContaining(`table_schema = 'we"ird' and table_name = 'o''neil'`),
      `select cast(count(*) as bigint) from "we""ird"."o'neil"`,
    ]);
  });

  it('fails when the warehouse does not answer every query with a count', async () => {
    const models = [model('vip', 'added')];
    const short: QueryRunner = async () => [{ columns: [], rows: [] }];
    await expect(compareData(models, short)).rejects.toThrow('the warehouse answered 1 of 2 queries');
    const notCount: QueryRunner = async (queries) => queries.map(() => ({ columns: [], rows: [['many']] }));
    await expect(compareData(models, notCount)).rejects.toThrow(
      'the warehouse returned many where a count was expected',
    );
  });
});
