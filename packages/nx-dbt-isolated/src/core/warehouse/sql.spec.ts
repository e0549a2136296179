import { Client } from 'pg';
import { UserError } from '../workspace/errors';
import type { WarehouseConnection } from '../dbt/operation';
import { postgresConnection, duckDbConnection } from '../testing/dbt-connection';
import { makeTempDir, removeDir } from '../testing/git-repo';
import { quoteIdentifier, quoteLiteral, runInTransaction, runQueries } from './sql';

describe('statements through dbt, on a real DuckDB file', () => {
  let dir: string;
  let connection: WarehouseConnection;
  beforeAll(() => {
    dir = makeTempDir();
    connection = duckDbConnection(dir);
  });
  afterAll(() => removeDir(dir));

  it('commits a transaction, and returns every value as text and SQL null as null', async () => {
    await runInTransaction(
      connection,
      ['create schema s', 'create table s.t as select 1 as id, 2.50 as amount, null as note'],
      'set up',
    );
    const [rows, empty] = await runQueries(
      connection,
      ['select id, cast(amount as decimal(10, 2)) as amount, note from s.t', 'select 1 as x where false'],
      'read',
    );
    expect(rows).toEqual({ columns: ['id', 'amount', 'note'], rows: [['1', '2.50', null]] });
    expect(empty).toEqual({ columns: ['x'], rows: [] });
  }, 300_000);

  it("rolls the whole transaction back when a statement fails, and names the warehouse's complaint", async () => {
    const failed = runInTransaction(connection, ['drop table s.t', 'select * from s.missing'], 'switch the views');
    await expect(failed).rejects.toBeInstanceOf(UserError);
    await expect(failed).rejects.toThrow(
      /^the warehouse refused to switch the views \(Catalog Error: Table with name missing does not exist!\), with the connection of .*profiles.yml: fix what it names, then run again\.$/,
    );
    const [rows] = await runQueries(connection, ['select count(*) as n from s.t'], 'read');
    expect(rows.rows).toEqual([['1']]);
  }, 300_000);
});

describe('a transaction on PostgreSQL, through dbt', () => {
  let dir: string;
  let connection: WarehouseConnection;
  const schema = `nx_spec_tx_${process.pid}`;
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  const tablesSeen = async () =>
    (await client.query('select count(*)::int as n from information_schema.tables where table_schema = $1', [schema]))
      .rows[0].n as number;
  beforeAll(async () => {
    dir = makeTempDir();
    connection = postgresConnection(dir, schema);
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
    removeDir(dir);
  }, 60_000);

  it('shows another session none of its statements before the commit, then all of them', async () => {
    const statements = [
      `create schema ${schema}`,
      `create table ${schema}.first as select 1 as x`,
      'select pg_sleep(3)',
      `create table ${schema}.second as select 1 as x`,
    ];
    let done = false;
    const running = runInTransaction(connection, statements, 'test').finally(() => (done = true));
    const seenWhileRunning: number[] = [];
    while (!done) {
      seenWhileRunning.push(await tablesSeen());
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await running;
    // Looks every 0.2 s during a 3 s sleep between the two tables: without one transaction,
    // many would see the first table alone.
    expect(seenWhileRunning).not.toContain(1);
    expect(seenWhileRunning.filter((count) => count === 0).length).toBeGreaterThan(10);
    const firstCommitted = seenWhileRunning.indexOf(2);
    if (firstCommitted >= 0) expect(seenWhileRunning.slice(firstCommitted)).not.toContain(0);
    expect(await tablesSeen()).toBe(2);
  }, 300_000);
});

describe('quoting', () => {
  it('doubles the quote inside identifiers and literals', () => {
    expect(quoteIdentifier('my "odd" name')).toBe('"my ""odd"" name"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
  });
});
