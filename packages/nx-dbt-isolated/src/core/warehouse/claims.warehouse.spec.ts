import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import {
  CLAIMS_TABLE,
  claimRestoredBuild,
  claimStatements,
  releaseClaimsAndDrop,
  schemaLockStatements,
  type Claim,
} from './claims';
import type { WarehouseConnection } from '../dbt/operation';
import { postgresConnection } from '../testing/dbt-connection';
import { makeTempDir, removeDir } from '../testing/git-repo';
import { runInTransaction } from './sql';

describe('claims on a shared PostgreSQL database, through dbt', () => {
  const prefix = `nx_spec_claims_${randomBytes(4).toString('hex')}`;
  const client = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  let dir: string;
  let connection: WarehouseConnection;
  let count = 0;
  /** A build's isolated schema of its own for each test, with its custom sibling. */
  const nextSchema = () => `${prefix}_${++count}`;
  const claim = (schema: string, workspace: string, how: Claim['how'] = 'built'): Claim => ({
    schema,
    project: 'analytics',
    commit: 'c'.repeat(40),
    workspace,
    workspacePath: `/clones/${workspace}`,
    how,
  });
  const schemasNow = async (schema: string) =>
    (
      await client.query<{ name: string }>(
        'select schema_name as name from information_schema.schemata where starts_with(schema_name, $1) order by 1',
        [schema],
      )
    ).rows.map((row) => row.name);
  /** Sessions waiting for an advisory lock that the session `holder` holds. */
  const waitersOn = async (holder: number) =>
    (
      await client.query(
        `select from pg_locks waiting join pg_locks held using (locktype, database, classid, objid, objsubid)
         where waiting.locktype = 'advisory' and not waiting.granted and held.granted and held.pid = $1`,
        [holder],
      )
    ).rows.length;
  /** What dbt leaves after a build: the schema and a sibling, then the claim parse-then-run.py writes. */
  const built = async (schema: string, workspace: string) =>
    runInTransaction(
      connection,
      [
        `create schema ${schema}`,
        `create table ${schema}.customers as select 1 as id`,
        `create schema ${schema}_raw`,
        ...claimStatements(claim(schema, workspace), '2026-12-01T00:00:00Z'),
      ],
      'set up',
    );
  const released = (schema: string, workspace: string, builtHere = true) =>
    releaseClaimsAndDrop(
      connection,
      workspace,
      [{ schema, schemas: [schema, `${schema}_raw`], project: 'analytics', builtHere }],
      'nx run analytics:promote',
    );

  beforeAll(async () => {
    dir = makeTempDir();
    connection = postgresConnection(dir, prefix);
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    for (const schema of await schemasNow(prefix)) await client.query(`drop schema "${schema}" cascade`);
    await client.end();
    removeDir(dir);
  }, 60_000);

  it('keeps the schemas while another workspace claims them, and drops them once the last claim goes', async () => {
    const schema = nextSchema();
    await built(schema, 'workspace-a');
    expect(await claimRestoredBuild(connection, claim(schema, 'workspace-b', 'restored'))).toBe(true);

    const first = await released(schema, 'workspace-a');
    expect(first.existing).toEqual([]);
    expect(first.claimed.get(schema)).toEqual([
      {
        workspace: 'workspace-b',
        where: expect.stringMatching(/:\/clones\/workspace-b$/),
        how: 'restored',
        at: expect.any(String),
      },
    ]);
    expect(await schemasNow(schema)).toEqual([schema, `${schema}_raw`]);
    const rows = await client.query(`select workspace_id from ${schema}.${CLAIMS_TABLE}`);
    expect(rows.rows).toEqual([{ workspace_id: 'workspace-b' }]);

    const last = await released(schema, 'workspace-b', false);
    expect(last.existing).toEqual([schema, `${schema}_raw`]);
    expect(last.claimed.size).toBe(0);
    expect(await schemasNow(schema)).toEqual([]);
  }, 300_000);

  it('claims a restored build only where its schema still exists', async () => {
    const schema = nextSchema();
    expect(await claimRestoredBuild(connection, claim(schema, 'workspace-b', 'restored'))).toBe(false);
    expect(await schemasNow(schema)).toEqual([]);
  }, 120_000);

  it('decides by who built it where no claims table exists (builds made before claims)', async () => {
    const schema = nextSchema();
    await runInTransaction(connection, [`create schema ${schema}`, `create schema ${schema}_raw`], 'set up');
    const foreign = await released(schema, 'workspace-b', false);
    expect(foreign.claimed.get(schema)).toEqual([]);
    expect(await schemasNow(schema)).toEqual([schema, `${schema}_raw`]);
    const own = await released(schema, 'workspace-a', true);
    expect(own.existing).toEqual([schema, `${schema}_raw`]);
    expect(await schemasNow(schema)).toEqual([]);
  }, 300_000);

  it("waits for the schema's advisory lock, which a build holds for its whole dbt run, before it drops", async () => {
    const schema = nextSchema();
    await built(schema, 'workspace-a');
    const build = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
    await build.connect();
    try {
      await build.query(schemaLockStatements(schema).lock);
      const holder = (await build.query('select pg_backend_pid() as pid')).rows[0].pid;
      let finished = false;
      const clean = released(schema, 'workspace-a').finally(() => (finished = true));
      // Until the clean's session queues behind the build's lock, or the clean ends without waiting.
      while (!finished && (await waitersOn(holder)) === 0) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(finished).toBe(false);
      expect(await schemasNow(schema)).toEqual([schema, `${schema}_raw`]);
      await build.query(
        `insert into ${schema}.${CLAIMS_TABLE} (workspace_id, project) values ('workspace-c', 'analytics')`,
      );
      await build.end();
      const outcome = await clean;
      expect(outcome.claimed.get(schema)?.map((claimant) => claimant.workspace)).toEqual(['workspace-c']);
      expect(await schemasNow(schema)).toEqual([schema, `${schema}_raw`]);
    } finally {
      await build.end().catch(() => undefined);
    }
  }, 300_000);
});
