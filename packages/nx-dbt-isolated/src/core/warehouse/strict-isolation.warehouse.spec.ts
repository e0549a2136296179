import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import type { WarehouseConnection } from '../dbt/operation';
import { isolateProfile, type IsolatedProfile } from '../dbt/profiles';
import { endLeftoverRoles, strictIsolation, type StrictIsolation } from './strict-isolation';
import { postgresConnection } from '../testing/dbt-connection';
import { makeTempDir, removeDir } from '../testing/git-repo';
import { runInTransaction } from './sql';

/**
 * strictIsolation on the test PostgreSQL server, through dbt: the profile's user is a
 * non-superuser with CREATEROLE, as a team's dbt user would be, and every name carries a random
 * part so that concurrent runs of the suite cannot meet.
 */
describe('strictIsolation on a real PostgreSQL, through dbt', () => {
  const id = randomBytes(4).toString('hex');
  const builder = `nx_spec_builder_${id}`;
  const isolated = `nx_spec_strict_${id}_abc12345`;
  const source = `nx_spec_source_${id}`;
  const victim = `nx_spec_victim_${id}`;
  const admin = new Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  const lines: string[] = [];
  let dir: string;
  let connection: WarehouseConnection;
  let profile: IsolatedProfile;
  let manifestFile: string;

  const start = (exceptions: string[] = []) =>
    strictIsolation({ profile, connection, exceptions, reporter: { info: (line) => lines.push(line) } });
  /**
   * Runs statements in one transaction as dbt's command would: connected with the environment
   * that sets the role. Each is a dbt process, which is most of this file's time.
   */
  const asRole = (strict: StrictIsolation, ...statements: string[]) =>
    runInTransaction({ ...connection, env: strict.environment(process.env) }, statements, 'run the test statement');
  const query = async (sql: string, values: unknown[] = []) => (await admin.query(sql, values)).rows;
  const roleExists = async (role: string) => (await query('select from pg_roles where rolname = $1', [role])).length;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`create role ${builder} login createrole`);
    await admin.query(`grant create on database test to ${builder}`);
    for (const schema of [source, victim]) {
      await admin.query(`create schema ${schema} authorization ${builder}`);
      await admin.query(`create table ${schema}.t as select 1 as id`);
      await admin.query(`alter table ${schema}.t owner to ${builder}`);
    }
    dir = makeTempDir();
    const base = postgresConnection(dir, `nx_spec_strict_${id}`, { user: builder });
    const file = join(dir, 'profiles.yml');
    profile = isolateProfile({
      text: readFileSync(file, 'utf8'),
      file,
      profile: base.profile,
      suffix: 'abc12345',
      projectDir: dir,
    });
    writeFileSync(file, profile.yaml);
    connection = base;
    manifestFile = join(dir, 'manifest.json');
    writeFileSync(
      manifestFile,
      JSON.stringify({
        nodes: {
          'model.p.m': {
            unique_id: 'model.p.m',
            name: 'm',
            resource_type: 'model',
            database: 'test',
            schema: isolated,
            config: { materialized: 'table' },
          },
          'model.p.f': {
            unique_id: 'model.p.f',
            name: 'f',
            resource_type: 'model',
            database: 'test',
            schema: `${isolated}_finance`,
            config: { materialized: 'table' },
          },
        },
        sources: {
          'source.p.s.t': { unique_id: 'source.p.s.t', database: 'test', schema: source, identifier: 't' },
          'source.p.s.gone': { unique_id: 'source.p.s.gone', database: 'test', schema: source, identifier: 'gone' },
        },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    for (const schema of [isolated, `${isolated}_finance`, source, victim]) {
      await admin.query(`drop schema if exists ${schema} cascade`);
    }
    await admin.query(`drop owned by ${builder}`).catch(() => undefined);
    await admin.query(`drop role if exists ${builder}`);
    await admin.query(`drop role if exists nx_dbt_isolated_${isolated}`);
    await admin.end();
    removeDir(dir);
  }, 60_000);

  it('lets the role create in the build schemas and read the sources, and nothing else; then ends the role', async () => {
    const strict = start();
    expect(strict.role).toBe(`nx_dbt_isolated_${isolated}`);
    // Privileges as they take effect: a grant and its revoke leave the default ACL written out.
    const aclBefore = await query(
      `select coalesce(relacl, acldefault('r', relowner))::text as acl from pg_class where oid = '${source}.t'::regclass`,
    );
    await strict.prepare(manifestFile);

    await asRole(
      strict,
      `create table ${isolated}.m as select id from ${source}.t`,
      `create table ${isolated}_finance.f as select 2 as id`,
      // Without the grant option PostgreSQL only warns; the ACL, checked below, stays as it was.
      `grant select on ${source}.t to public`,
    );
    await expect(asRole(strict, `drop schema ${victim} cascade`)).rejects.toThrow(/must be owner of schema/);
    // The role is the session's default, set when dbt connects: neither a rollback nor RESET ROLE undoes it.
    await expect(asRole(strict, `reset role; drop schema ${victim} cascade`)).rejects.toThrow(
      /must be owner of schema/,
    );
    await expect(asRole(strict, `create table public.nx_spec_${id} as select 1 as x`)).rejects.toThrow(
      /permission denied for schema public/,
    );
    await expect(asRole(strict, `create schema nx_spec_new_${id}`)).rejects.toThrow(/permission denied for database/);
    await expect(asRole(strict, `insert into ${source}.t values (2)`)).rejects.toThrow(/permission denied for table t/);
    await expect(asRole(strict, `alter role ${builder} connection limit 1`)).rejects.toThrow(/permission denied/);

    expect(await strict.release()).toBe(true);
    expect(await roleExists(strict.role)).toBe(0);
    expect(
      await query(
        `select c.relname, pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ($1, $2) and c.relkind = 'r' order by 1`,
        [isolated, `${isolated}_finance`],
      ),
    ).toEqual([
      { relname: 'f', owner: builder },
      { relname: 'm', owner: builder },
    ]);
    expect(await query(`select id from ${victim}.t`)).toEqual([{ id: 1 }]);
    expect(
      await query(
        `select coalesce(relacl, acldefault('r', relowner))::text as acl from pg_class where oid = '${source}.t'::regclass`,
      ),
    ).toEqual(aclBefore);
    expect(lines).toContain(
      `• strictIsolation: dbt runs as role ${strict.role}, which may create only in ${isolated}, ${isolated}_finance and read 2 source(s)`,
    );
  }, 600_000);

  it("builds again over the relations of the commit's earlier build, which the role takes over for the build", async () => {
    const strict = start();
    await strict.prepare(manifestFile);
    // dbt-postgres replaces a table by renaming it aside and dropping it: only its owner may.
    await asRole(strict, `alter table ${isolated}.m rename to m__dbt_backup`, `drop table ${isolated}.m__dbt_backup`);
    await strict.release();
    expect(await roleExists(strict.role)).toBe(0);
  }, 600_000);

  it('refuses a role of that name it did not make, and leaves that role alone', async () => {
    const role = `nx_dbt_isolated_${isolated}`;
    await admin.query(`create role ${role} nologin`);
    try {
      const strict = start();
      await expect(strict.prepare(manifestFile)).rejects.toThrow(
        new RegExp(`would build as role ${role}, which exists and was not made by nx-dbt-isolated`),
      );
      await strict.release();
      expect(await roleExists(role)).toBe(1);
    } finally {
      await admin.query(`drop role ${role}`);
    }
  }, 600_000);

  it("says in one line when the profile's user may not create roles, and creates nothing", async () => {
    await admin.query(`alter role ${builder} nocreaterole`);
    try {
      const strict = start();
      const failed = strict.prepare(manifestFile);
      await expect(failed).rejects.toThrow(
        new RegExp(
          `strictIsolation makes a role for the build, and ${builder} may not create roles: run ALTER ROLE ${builder} CREATEROLE as a superuser`,
        ),
      );
      expect(await roleExists(strict.role)).toBe(0);
    } finally {
      await admin.query(`alter role ${builder} createrole`);
    }
  }, 600_000);

  it('refuses nodes isolationExceptions lets write outside the build schemas, which the role could not', async () => {
    const escaping = join(dir, 'escaping.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    manifest.nodes['model.p.export'] = {
      ...manifest.nodes['model.p.m'],
      unique_id: 'model.p.export',
      name: 'export',
      schema: 'exports',
    };
    writeFileSync(escaping, JSON.stringify(manifest));
    await expect(start(['export']).prepare(escaping)).rejects.toThrow(
      /^strictIsolation lets dbt create only in .* and isolationExceptions lets model.p.export → test.exports write elsewhere/,
    );
  });

  it("lets clean end the role of a build killed before it could, once the build's schemas are dropped", async () => {
    const strict = start();
    await strict.prepare(manifestFile);
    await asRole(strict, `create table ${isolated}.left_behind as select 1 as id`);
    await admin.query(`drop schema ${isolated} cascade`);
    await admin.query(`drop schema ${isolated}_finance cascade`);
    expect(await roleExists(strict.role)).toBe(1);

    await endLeftoverRoles(connection, [isolated]);

    expect(await roleExists(strict.role)).toBe(0);
    expect(await query(`select id from ${source}.t`)).toEqual([{ id: 1 }]);
  }, 600_000);

  it('remains open to SQL that sets another role itself: it runs with the profile user’s rights', async () => {
    const strict = start();
    await strict.prepare(manifestFile);
    try {
      await asRole(strict, `set role none; drop table ${victim}.t`);
      expect(await query(`select from pg_tables where schemaname = $1`, [victim])).toEqual([]);
    } finally {
      await strict.release();
    }
  }, 600_000);
});
