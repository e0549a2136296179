import { randomBytes } from 'node:crypto';
import { postgresBuildRelations } from '../support/fixture-relations';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { fileAt, postgresRelations, postgresRows, readBuildRecord } from '../support/workflows';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * What the isolation check cannot read: SQL that a model body (run_query), a hook or a post_hook
 * sends. Without strictIsolation it reaches a foreign schema (the route documented as remaining);
 * with it, dbt runs as a role of the build's own and PostgreSQL refuses.
 */

const short = (sha: string) => sha.slice(0, 8);
const id = randomBytes(4).toString('hex');
const base = `nxdbt_strict_${id}`;
const victim = `nxdbt_victim_${id}`;
const env = { ANALYTICS_PG_SCHEMA: base };
const DROP_VICTIM = `drop schema ${victim} cascade`;

const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

const victimRows = () => postgresRows(`${victim}.accounts`);
const rolesOfThisRun = () =>
  withPostgres(async (client) =>
    (
      await client.query<{ name: string }>(`select rolname as name from pg_roles where rolname like $1`, [`%${id}%`])
    ).rows.map((row) => row.name),
  );
/** Who owns the relations in the schemas starting with `prefix`: the role's are given back to the user. */
const ownersOfRelationsIn = (prefix: string) =>
  withPostgres(async (client) =>
    (
      await client.query<{ owner: string }>(
        `select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where starts_with(n.nspname, $1) and c.relkind in ('r', 'v') order by 1`,
        [prefix],
      )
    ).rows.map((row) => row.owner),
  );
const createVictim = () =>
  withPostgres(async (client) => {
    await client.query(`create schema if not exists ${victim}`);
    await client.query(`create table if not exists ${victim}.accounts as select 1 as id, 'kept' as note`);
  });

describe('strictIsolation on PostgreSQL: SQL the isolation check cannot read', () => {
  let ws: TestWorkspace;
  const build = (ref: string, ...args: string[]) =>
    ws.nx(['run', 'analytics:isolated-build', `--ref=${ref}`, '--target=pg', ...args], env);

  const ROUTES = ['a model body calling run_query', 'an on-run-start hook', 'a post_hook'];
  /** Routes by which a commit's SQL drops the victim schema, as in ROUTES: a branch and its files. */
  const hostile = (): [string, Record<string, string>][] => [
    [
      'drop-in-model',
      {
        'analytics/models/marts/cleanup.sql': `{% if execute %}{% do run_query('${DROP_VICTIM}') %}{% endif %}\nselect 1 as id\n`,
      },
    ],
    [
      'drop-in-hook',
      {
        'analytics/dbt_project.yml': `${fileAt(ws.dir, ws.main, 'analytics/dbt_project.yml')}\non-run-start:\n  - "${DROP_VICTIM}"\n`,
      },
    ],
    [
      'drop-in-post-hook',
      {
        'analytics/models/marts/cleanup.sql': `{{ config(post_hook="${DROP_VICTIM}") }}\nselect 1 as id\n`,
      },
    ],
  ];

  beforeAll(async () => {
    ws = createTestWorkspace();
    await createVictim();
  }, 120_000);

  afterAll(async () => {
    await dropSchemasStartingWith(base);
    await withPostgres((client) => client.query(`drop schema if exists ${victim} cascade`));
    ws.remove();
  }, 120_000);

  it('without strictIsolation, a model body that drops a foreign schema builds with exit 0 (the route that remains)', async () => {
    const [branch, files] = hostile()[0];
    const commit = commitBeside(ws.dir, ws.main, branch, branch, files);

    const result = await build(branch);

    expectSuccess(result);
    expect(result.output).toContain('isolation check: every relation stays in');
    expect(await schemasStartingWith(victim)).toEqual([]);
    expect(readBuildRecord(ws.dir, commit, 'pg').status).toBe('succeeded');
  });

  it.each(ROUTES.map((route, index) => [route, index] as const))(
    'with --strictIsolation, %s fails in PostgreSQL and the foreign schema stays',
    async (_route, index) => {
      await createVictim();
      const [branch, files] = hostile()[index];
      const commit = commitBeside(ws.dir, ws.main, `${branch}-strict`, branch, files);
      const before = ws.gitState();

      const result = await build(`${branch}-strict`, '--strictIsolation');

      expect(result.code).not.toBe(0);
      expect(result.output).toContain(`must be owner of schema ${victim}`);
      expect(result.output).toContain(`strictIsolation: dbt runs as role nx_dbt_isolated_${base}_${short(commit)}`);
      expect(await victimRows()).toEqual([{ id: 1, note: 'kept' }]);
      expect(readBuildRecord(ws.dir, commit, 'pg').status).toBe('failed');
      expect(await rolesOfThisRun()).toEqual([]);
      expect(ws.gitState()).toBe(before);
    },
  );

  it('with --strictIsolation, main builds every relation into its own schemas, and reads a source in a foreign schema', async () => {
    const reads = commitBeside(ws.dir, ws.main, 'reads-victim', 'reads a foreign source', {
      'analytics/models/staging/_victim.yml': `version: 2\nsources:\n  - name: victim\n    schema: ${victim}\n    tables:\n      - name: accounts\n`,
      'analytics/models/staging/victim_accounts.sql': "select * from {{ source('victim', 'accounts') }}\n",
    });

    const mainBuild = await build('main', '--strictIsolation');
    const readsBuild = await build('reads-victim', '--strictIsolation');

    expectSuccess(mainBuild);
    expectSuccess(readsBuild);
    const schema = `${base}_${short(ws.main)}`;
    expect(await postgresRelations(schema)).toEqual(
      postgresBuildRelations(schema).map(
        (relation) => `${relation} (${relation.includes('.stg_') ? 'VIEW' : 'BASE TABLE'})`,
      ),
    );
    expect(await postgresRows(`${base}_${short(reads)}.victim_accounts`)).toEqual([{ id: 1, note: 'kept' }]);
    expect(await rolesOfThisRun()).toEqual([]);
    expect(await ownersOfRelationsIn(schema)).toEqual(['postgres']);
    expect(readsBuild.output).toContain(`strictIsolation: role nx_dbt_isolated_${base}_${short(reads)} dropped`);
  });

  it('clean then drops every schema the builds made and leaves the foreign schema and no role', async () => {
    expectSuccess(await ws.nx(['run', 'analytics:clean', '--all', '--target=pg'], env));
    expectSuccess(await ws.nx(['run', 'analytics:clean', '--ref=main', '--target=pg'], env));

    expect(await schemasStartingWith(base)).toEqual([]);
    expect(await victimRows()).toEqual([{ id: 1, note: 'kept' }]);
    expect(await rolesOfThisRun()).toEqual([]);
  });
});
