import { quoteIdentifier, quoteLiteral } from '../warehouse/sql';
import type { ModelToCompare, RelationRef } from './manifest-diff';
import type { ColumnChanges, ColumnType, Comparison, DataDiff, RowCounts } from './types';

/** What one query returned; values as the driver gives them (counts may be numbers, strings or bigints). */
export interface QueryResult {
  columns: string[];
  rows: unknown[][];
}

/** Runs the queries in one trip to the warehouse and returns one result per query, in order. */
export type QueryRunner = (queries: string[]) => Promise<QueryResult[]>;

/** A relation as round 1 found it. */
interface SideFacts {
  relation: string;
  rows: number;
  columns: ColumnType[];
  /** Counted with the unique key's name as given; meaningless when the relation lacks that column. */
  keyNulls?: number;
  keyDuplicates?: number;
}

interface Described {
  model: ModelToCompare;
  base?: SideFacts;
  head?: SideFacts;
}

/** A column both sides have, by its name on each side. */
interface CommonColumn {
  name: string;
  base: string;
  head: string;
  asText: boolean;
}

interface Batch<T> {
  queries: string[];
  read(results: QueryResult[]): T;
}

/**
 * Compares each model's relations in the warehouse with two calls to `run`: one for row counts,
 * columns and unique-key checks, one for the row comparisons.
 */
export async function compareData(models: ModelToCompare[], run: QueryRunner): Promise<DataDiff[]> {
  const described = await runBatches(run, models.map(describe));
  return runBatches(run, described.map(compare));
}

/** Runs every batch's queries in one call and gives each batch its own results. */
async function runBatches<T>(run: QueryRunner, batches: Batch<T>[]): Promise<T[]> {
  const queries = batches.flatMap((batch) => batch.queries);
  const results = queries.length > 0 ? await run(queries) : [];
  if (results.length !== queries.length) {
    throw new Error(`the warehouse answered ${results.length} of ${queries.length} queries`);
  }
  let offset = 0;
  return batches.map((batch) => {
    const own = results.slice(offset, offset + batch.queries.length);
    offset += batch.queries.length;
    return batch.read(own);
  });
}

function describe(model: ModelToCompare): Batch<Described> {
  const key = model.base && model.head ? model.uniqueKey : undefined;
  const sides = (['base', 'head'] as const).filter((side) => model[side] !== undefined);
  const refOf = (side: 'base' | 'head') => model[side] as RelationRef;
  return {
    queries: sides.flatMap((side) => [columnsQuery(refOf(side)), statsQuery(relationName(refOf(side)), key)]),
    read: (results) => {
      const described: Described = { model };
      sides.forEach((side, index) => {
        described[side] = sideFacts(refOf(side), results[2 * index], results[2 * index + 1]);
      });
      return described;
    },
  };
}

function columnsQuery(side: RelationRef): string {
  return `select column_name, data_type from information_schema.columns
where table_catalog = current_database() and table_schema = ${quoteLiteral(side.schema)} and table_name = ${quoteLiteral(side.identifier)}
order by ordinal_position`;
}

/**
 * Row count and, with a key, the key's null count and duplicated-value count. The one-row outer
 * query holds a column named like the key, so the statement still runs when the relation lacks
 * that column: the key then names the outer column (those counts are ignored).
 */
function statsQuery(relation: string, key: string | undefined): string {
  const rows = `select cast(count(*) as bigint) from ${relation}`;
  if (key === undefined) return rows;
  const column = quoteIdentifier(key);
  return `select
  (${rows}) as row_count,
  (select cast(count(*) as bigint) from ${relation} where ${column} is null) as null_keys,
  (select cast(count(*) as bigint) from (
    select key_value from (select ${column} as key_value from ${relation}) as keys
    where key_value is not null group by key_value having count(*) > 1
  ) as duplicated) as duplicated_keys
from (select 1 as ${column}) as absent`;
}

function sideFacts(side: RelationRef, columns: QueryResult, stats: QueryResult): SideFacts {
  const [rows, keyNulls, keyDuplicates] = firstRow(stats).map(toCount);
  return {
    relation: relationName(side),
    rows,
    columns: columns.rows.map(([name, type]) => ({ name: String(name), type: String(type) })),
    ...(keyNulls !== undefined && { keyNulls, keyDuplicates }),
  };
}

function compare({ model, base, head }: Described): Batch<DataDiff> {
  const entry = {
    node: model.node,
    name: model.name,
    change: model.change,
    base: base ? { relation: base.relation, rows: base.rows } : null,
    head: head ? { relation: head.relation, rows: head.rows } : null,
  };
  if (!base || !head) {
    const columns = { added: head?.columns ?? [], removed: base?.columns ?? [], typeChanged: [] };
    return { queries: [], read: () => ({ ...entry, columns, comparison: null, valueDifferences: {} }) };
  }
  const common = commonColumns(base, head);
  const columns = columnChanges(base, head);
  const key = usableKey(model.uniqueKey, base, head, common);
  const compared = key ? common.filter((column) => column !== key) : common;
  const query = key ? keyedQuery(base, head, key, compared) : multisetQuery(base, head, compared);
  return {
    queries: [query],
    read: ([result]) => {
      const [matched, onlyInBase, onlyInHead, ...differences] = firstRow(result).map(toCount);
      const counts: RowCounts = { matched, onlyInBase, onlyInHead };
      const note = key ? undefined : keyNote(model.uniqueKey, base, head);
      const comparison: Comparison = key
        ? { mode: 'key', key: key.name, ...counts }
        : { mode: 'multiset', ...counts, ...(note !== undefined && { note }) };
      const valueDifferences = Object.fromEntries(compared.map((column, index) => [column.name, differences[index]]));
      return { ...entry, columns, comparison, valueDifferences };
    },
  };
}

/** Columns are matched by name regardless of case: warehouses fold unquoted names differently. */
function findColumn(columns: ColumnType[], name: string): ColumnType | undefined {
  return columns.find((column) => column.name.toLowerCase() === name.toLowerCase());
}

function commonColumns(base: SideFacts, head: SideFacts): CommonColumn[] {
  return head.columns.flatMap((headColumn) => {
    const baseColumn = findColumn(base.columns, headColumn.name);
    if (!baseColumn) return [];
    const asText = baseColumn.type !== headColumn.type;
    return [{ name: headColumn.name, base: baseColumn.name, head: headColumn.name, asText }];
  });
}

function columnChanges(base: SideFacts, head: SideFacts): ColumnChanges {
  return {
    added: head.columns.filter((column) => !findColumn(base.columns, column.name)),
    removed: base.columns.filter((column) => !findColumn(head.columns, column.name)),
    typeChanged: head.columns.flatMap((headColumn) => {
      const baseColumn = findColumn(base.columns, headColumn.name);
      return baseColumn && baseColumn.type !== headColumn.type
        ? [{ name: headColumn.name, base: baseColumn.type, head: headColumn.type }]
        : [];
    }),
  };
}

/** The key column when both sides have it with neither nulls nor duplicates. */
function usableKey(
  uniqueKey: string | undefined,
  base: SideFacts,
  head: SideFacts,
  common: CommonColumn[],
): CommonColumn | undefined {
  if (uniqueKey === undefined || keyProblems(uniqueKey, base, head).length > 0) return undefined;
  return common.find((column) => column.name.toLowerCase() === uniqueKey.toLowerCase());
}

function keyNote(uniqueKey: string | undefined, base: SideFacts, head: SideFacts): string | undefined {
  if (uniqueKey === undefined) return undefined;
  return `${uniqueKey} ${keyProblems(uniqueKey, base, head).join(' and ')}: compared as multisets`;
}

function keyProblems(key: string, base: SideFacts, head: SideFacts): string[] {
  const sides = [
    { label: 'base', facts: base },
    { label: 'head', facts: head },
  ];
  const missing = sides.filter(({ facts }) => !findColumn(facts.columns, key)).map(({ label }) => label);
  const present = sides.filter(({ label }) => !missing.includes(label));
  return [
    ...(missing.length > 0 ? [`is missing in ${missing.join(' and ')}`] : []),
    ...present
      .filter(({ facts }) => (facts.keyNulls ?? 0) > 0)
      .map(({ label, facts }) => `has nulls in ${label} (${plural(facts.keyNulls ?? 0, 'row')})`),
    ...present
      .filter(({ facts }) => (facts.keyDuplicates ?? 0) > 0)
      .map(({ label, facts }) => `is not unique in ${label} (${plural(facts.keyDuplicates ?? 0, 'duplicated value')})`),
  ];
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Pairs rows by key; a value difference is a paired row whose column differs, nulls equal to nulls. */
function keyedQuery(base: SideFacts, head: SideFacts, key: CommonColumn, columns: CommonColumn[]): string {
  const differences = columns.map(
    (_, index) =>
      `cast(count(case when b.key_value = h.key_value and b.c${index} is distinct from h.c${index} then 1 end) as bigint) as c${index}`,
  );
  return `select
  cast(count(case when b.key_value = h.key_value then 1 end) as bigint) as matched,
  cast(count(case when h.key_value is null then 1 end) as bigint) as only_in_base,
  cast(count(case when b.key_value is null then 1 end) as bigint) as only_in_head${differences.map((line) => `,\n  ${line}`).join('')}
from ${projection(base, 'base', columns, key)} as b
full join ${projection(head, 'head', columns, key)} as h on b.key_value = h.key_value`;
}

/**
 * Counts each distinct whole row (then each distinct value of each column) on both sides with
 * `group by`, which treats nulls as equal: what is not matched by an equal row of the other side
 * is only in one side.
 */
function multisetQuery(base: SideFacts, head: SideFacts, columns: CommonColumn[]): string {
  const names = columns.map((_, index) => `c${index}`);
  const grouped = names.length > 0 ? ` group by ${names.join(', ')}` : '';
  const valueDifferences = names.map(
    (name) => `(select cast(coalesce(sum(case when nb > nh then nb - nh else nh - nb end), 0) as bigint)
    from (select sum(in_base) as nb, sum(in_head) as nh from both_sides group by ${name}) as counted) as ${name}`,
  );
  const selected = names.map((name) => `${name}, `).join('');
  return `with both_sides as (
  select ${selected}1 as in_base, 0 as in_head from ${projection(base, 'base', columns)} as b
  union all
  select ${selected}0 as in_base, 1 as in_head from ${projection(head, 'head', columns)} as h
),
whole_rows as (select sum(in_base) as nb, sum(in_head) as nh from both_sides${grouped})
select
  cast(coalesce(sum(case when nb < nh then nb else nh end), 0) as bigint) as matched,
  cast(coalesce(sum(case when nb > nh then nb - nh else 0 end), 0) as bigint) as only_in_base,
  cast(coalesce(sum(case when nh > nb then nh - nb else 0 end), 0) as bigint) as only_in_head${valueDifferences.map((line) => `,\n  ${line}`).join('')}
from whole_rows`;
}

/**
 * One side's columns under positional names (`key_value`, `c0`, `c1`, …), so that any column name
 * works; a column whose type changed is cast to text so that both sides compare.
 */
function projection(facts: SideFacts, side: 'base' | 'head', columns: CommonColumn[], key?: CommonColumn): string {
  const value = (column: CommonColumn) => {
    const name = quoteIdentifier(column[side]);
    return column.asText ? `cast(${name} as varchar)` : name;
  };
  const values = [
    ...(key ? [`${value(key)} as key_value`] : []),
    ...columns.map((column, index) => `${value(column)} as c${index}`),
  ];
  return `(select ${values.length > 0 ? values.join(', ') : '1 as c'} from ${facts.relation})`;
}

function relationName(side: RelationRef): string {
  return `${quoteIdentifier(side.schema)}.${quoteIdentifier(side.identifier)}`;
}

function firstRow(result: QueryResult | undefined): unknown[] {
  const row = result?.rows[0];
  if (!row) throw new Error('the warehouse returned no row for a diff query');
  return row;
}

/** Drivers return counts as numbers, bigints or strings of digits. */
function toCount(value: unknown): number {
  const numeric = typeof value === 'bigint' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value));
  const count = numeric ? Number(value) : value;
  if (typeof count !== 'number' || !Number.isFinite(count)) {
    throw new Error(`the warehouse returned ${String(value)} where a count was expected`);
  }
  return count;
}
