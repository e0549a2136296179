import { UserError } from '../workspace/errors';
import { isolateProfile } from '../dbt/profiles';
import { grantStatements, releaseStatements, releasingRole, strictIsolation, strictRoleName } from './strict-isolation';
import { thrown } from '../testing/thrown';

const PROFILES = (type: string, extra = '') => `
analytics:
  target: pg
  outputs:
    pg:
      type: ${type}
      host: localhost
      port: 5432
      user: dbt
      password: "{{ env_var('DBT_PASSWORD') }}"
      dbname: warehouse
      schema: analytics
${extra}`;

describe('strictRoleName', () => {
  it('prefixes a plain schema name', () => {
    expect(strictRoleName('analytics_abcd1234')).toBe('nx_dbt_isolated_analytics_abcd1234');
  });

  it('keeps the name to lower-case letters, digits and _ (no quoting anywhere), with a hash to keep names apart', () => {
    const upper = strictRoleName('Analytics_abcd1234');
    const dashed = strictRoleName('analytics-x_abcd1234');
    expect(upper).toMatch(/^nx_dbt_isolated_analytics_abcd1234_[0-9a-f]{8}$/);
    expect(dashed).toMatch(/^nx_dbt_isolated_analytics_x_abcd1234_[0-9a-f]{8}$/);
    expect(upper).not.toBe(strictRoleName('analytics_abcd1234'));
  });

  it("stays within PostgreSQL's 63 bytes, and two long schemas that share a beginning get two roles", () => {
    const long = (end: string) => `${'a'.repeat(60)}_${end}`;
    expect(strictRoleName(long('one'))).toHaveLength(63);
    expect(strictRoleName(long('one'))).not.toBe(strictRoleName(long('two')));
  });
});

describe('grantStatements', () => {
  const statements = grantStatements({
    role: 'nx_dbt_isolated_analytics_abcd1234',
    schemas: ['analytics_abcd1234', 'analytics_abcd1234_finance'],
    sources: [{ schema: 'raw', identifier: "o'rders" }],
    readSchemas: ['analytics_base0001'],
  });

  it('makes the role only when the user may create roles, and never takes over a role it did not make', () => {
    expect(statements[0]).toMatch(/^do \$nx_dbt_isolated\$/);
    expect(statements[0]).toContain('(rolsuper or rolcreaterole)');
    expect(statements[0]).toContain('create role "nx_dbt_isolated_analytics_abcd1234" nologin;');
    expect(statements[0]).toContain(
      'comment on role "nx_dbt_isolated_analytics_abcd1234" is \'made by nx-dbt-isolated',
    );
    expect(statements[0]).toContain('which exists and was not made by nx-dbt-isolated');
  });

  it('lets the user become the role, and the role create in exactly the build schemas', () => {
    expect(statements.slice(1, 6)).toEqual([
      'grant "nx_dbt_isolated_analytics_abcd1234" to current_user',
      'create schema if not exists "analytics_abcd1234"',
      'grant usage, create on schema "analytics_abcd1234" to "nx_dbt_isolated_analytics_abcd1234"',
      'create schema if not exists "analytics_abcd1234_finance"',
      'grant usage, create on schema "analytics_abcd1234_finance" to "nx_dbt_isolated_analytics_abcd1234"',
    ]);
    expect(statements.join('\n')).not.toMatch(/grant [^;]*on database/);
  });

  it('gives the role the relations already in the build schemas, which dbt renames when it replaces them', () => {
    expect(statements[6]).toContain(
      "n.nspname = any(array['analytics_abcd1234', 'analytics_abcd1234_finance']::text[])",
    );
    expect(statements[6]).toContain("c.relkind in ('r', 'p', 'v', 'm', 'f')");
    expect(statements[6]).toContain("format('alter routine %s owner to %I', p.oid::regprocedure");
  });

  it('lets the role read the sources and a base build, where they exist, and nothing else', () => {
    expect(statements[7]).toContain(
      `if to_regclass('"raw"."o''rders"') is not null then grant select on "raw"."o'rders" to "nx_dbt_isolated_analytics_abcd1234"; end if;`,
    );
    expect(statements[7]).toContain(
      `if to_regnamespace('"raw"') is not null then grant usage on schema "raw" to "nx_dbt_isolated_analytics_abcd1234"; end if;`,
    );
    expect(statements[7]).toContain('grant select on all tables in schema "analytics_base0001"');
    expect(statements[7]).not.toContain('all tables in schema "raw"');
    expect(statements).toHaveLength(8);
  });

  it('grants no reads when the project has no sources and defers to no base', () => {
    expect(grantStatements({ role: 'r', schemas: ['s'], sources: [], readSchemas: [] })).toHaveLength(5);
  });
});

describe('releaseStatements', () => {
  it("gives what the role owns to the user and drops the role, only if the plugin's mark is on it", () => {
    const [statement] = releaseStatements('nx_dbt_isolated_analytics_abcd1234');
    expect(statement).toMatch(
      /if \(select shobj_description\(oid, 'pg_authid'\) = 'made by nx-dbt-isolated[^']*' from pg_roles where rolname = 'nx_dbt_isolated_analytics_abcd1234'\) then\s+reassign owned by "nx_dbt_isolated_analytics_abcd1234" to current_user;\s+drop owned by "nx_dbt_isolated_analytics_abcd1234";\s+drop role "nx_dbt_isolated_analytics_abcd1234";\s+end if;/,
    );
  });
});

describe('strictIsolation', () => {
  const start = (type: string, extra?: string) =>
    strictIsolation({
      profile: isolateProfile({
        text: PROFILES(type, extra),
        file: 'profiles.yml',
        profile: 'analytics',
        suffix: 'abcd1234',
        projectDir: '/ws/analytics',
      }),
      connection: {
        workspaceRoot: '/ws',
        dbt: 'dbt',
        profilesDir: '/ws/p',
        profile: 'analytics',
        target: 'pg',
        env: {},
      },
      exceptions: [],
      reporter: { info: () => undefined },
    });

  it('sets the role for every connection dbt opens, after any PGOPTIONS of the user', () => {
    const strict = start('postgres');
    expect(strict.environment({ PATH: '/bin' })).toEqual({
      PATH: '/bin',
      PGOPTIONS: '-c role=nx_dbt_isolated_analytics_abcd1234',
    });
    expect(strict.environment({ PGOPTIONS: '-c statement_timeout=5min' }).PGOPTIONS).toBe(
      '-c statement_timeout=5min -c role=nx_dbt_isolated_analytics_abcd1234',
    );
  });

  it('refuses a target that sets search_path, which would make dbt-postgres drop PGOPTIONS', () => {
    const error = thrown(() => start('postgres', '      search_path: "analytics,public"\n'));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      "strictIsolation sets the build's role in PGOPTIONS, which dbt-postgres replaces with its own when the target sets search_path, and dbt target pg does: remove search_path from it, or build without strictIsolation.",
    );
  });

  it.each(['duckdb', 'snowflake'])('refuses %s in one line naming the adapter', (type) => {
    const error = thrown(() => start(type));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `strictIsolation runs dbt as a role that may create only in the build's schemas, which the plugin can do on PostgreSQL only, and dbt target pg is ${type}: build it without strictIsolation.`,
    );
  });

  it('ends no role when it made none', async () => {
    await expect(start('postgres').release()).resolves.toBe(false);
  });

  it("gives the build's hold the role's end, for a session that connects without the role", () => {
    const end = start('postgres').holdEnd({ PGOPTIONS: '-c statement_timeout=5min' });
    expect(end.atEnd).toEqual(releaseStatements('nx_dbt_isolated_analytics_abcd1234'));
    expect(end.sessionPgOptions).toBe('-c statement_timeout=5min');
    expect(start('postgres').holdEnd({}).sessionPgOptions).toBeUndefined();
  });
});

describe('releasingRole', () => {
  const strictEnding = () => {
    const release = jest.fn(async () => true);
    const lines: string[] = [];
    return {
      strict: { role: 'r', release } as never,
      release,
      reporter: { info: (line: string) => lines.push(line) },
      lines,
    };
  };

  it("leaves the role to the hold that ended it, under the build's lock", async () => {
    const { strict, release, reporter, lines } = strictEnding();
    await releasingRole(strict, reporter, async () => ({ ended: true }));
    expect(release).not.toHaveBeenCalled();
    expect(lines).toEqual(["• strictIsolation: role r dropped; what it built belongs to the profile's user"]);
  });

  it('ends the role itself when the hold did not, and when dbt failed to run', async () => {
    const ended = strictEnding();
    await releasingRole(ended.strict, ended.reporter, async () => ({ ended: false }));
    expect(ended.release).toHaveBeenCalledTimes(1);
    const failed = strictEnding();
    await expect(
      releasingRole(failed.strict, failed.reporter, () => Promise.reject(new Error('dbt did not start'))),
    ).rejects.toThrow('dbt did not start');
    expect(failed.release).toHaveBeenCalledTimes(1);
  });
});
