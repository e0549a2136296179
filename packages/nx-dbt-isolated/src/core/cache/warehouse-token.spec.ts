import { openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import { DEV_POSTGRES, profilesYaml } from '../testing/profiles';
import { issueDuckDbToken, issueDuckDbTokens, rememberDuckDbFile, warehouseLocations } from './warehouse-token';

const PROFILES = `${profilesYaml('analytics', { dev: { ...DEV_POSTGRES, threads: 4 } })}    prod:
      type: postgres
      host: prod.example.com
      port: 5432
      user: deploy
      password: secret
      dbname: warehouse
      schema: analytics
      threads: 8
    bq:
      type: bigquery
      method: service-account
      project: my-gcp-project
      dataset: marts
      keyfile: /keys/bq.json
    sf:
      type: snowflake
      account: acme
      database: ANALYTICS
      schema: PUBLIC
      token: abc
`;

const DUCKDB = `
duck:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: data/warehouse.duckdb
      threads: 1
`;

/** PROFILES with its prod target written before its dev target. */
function devAfterProd(): string {
  const [head, rest] = PROFILES.split('    dev:\n');
  const [dev, others] = rest.split('    prod:\n');
  return `${head}    prod:\n${others}    dev:\n${dev}`;
}

/** `text` with `from` replaced, failing the test if `from` is not there. */
function edit(text: string, from: string, to: string): string {
  expect(text).toContain(from);
  return text.replace(from, to);
}

describe('warehouseLocations', () => {
  let workspaceRoot: string;
  beforeEach(() => {
    workspaceRoot = makeTempDir();
  });
  afterEach(() => removeDir(workspaceRoot));

  const locationRequest = (profilesText: string, env: NodeJS.ProcessEnv = {}, root = workspaceRoot) => ({
    profilesText,
    profilesFile: join(root, 'analytics', 'profiles.yml'),
    projectDir: join(root, 'analytics'),
    workspaceRoot: root,
    env,
  });
  /** The locations once the DuckDB tokens are made, as the hook keys a build. */
  const locationsOf = (profilesText: string, env: NodeJS.ProcessEnv = {}, root = workspaceRoot) => {
    issueDuckDbTokens(locationRequest(profilesText, env, root));
    return warehouseLocations(locationRequest(profilesText, env, root));
  };
  // The build key hashes the JSON text, so key order counts: compare that text.
  const locations = (profilesText: string, env: NodeJS.ProcessEnv = {}, root = workspaceRoot) =>
    JSON.stringify(locationsOf(profilesText, env, root));

  it.each([
    ['host', 'host: localhost', 'host: db.example.com'],
    ['port', 'port: 5432\n      user: me', 'port: 6543\n      user: me'],
    ['dbname', 'dbname: warehouse', 'dbname: warehouse2'],
    ['database', 'database: ANALYTICS', 'database: RAW'],
    ['schema', 'schema: dev_me', 'schema: dev_you'],
    ['dataset', 'dataset: marts', 'dataset: marts_v2'],
    ['project', 'project: my-gcp-project', 'project: other-project'],
    ['type', 'type: postgres', 'type: redshift'],
    ["profile's default target", 'target: dev', 'target: prod'],
  ])('changes when the %s changes', (_what, from, to) => {
    expect(locations(edit(PROFILES, from, to))).not.toEqual(locations(PROFILES));
  });

  it.each([
    [
      'key order in a target',
      () => edit(PROFILES, 'host: localhost\n      port: 5432', 'port: 5432\n      host: localhost'),
    ],
    ['target order', devAfterProd],
    ['key order in a profile', () => edit(PROFILES, '  target: dev\n', '') + '  target: dev\n'],
    ['comments', () => edit(PROFILES, 'host: localhost', '# the local database\n      host: localhost # here')],
    ['a password', () => edit(PROFILES, 'password: secret', 'password: hunter2')],
    ['a token', () => edit(PROFILES, 'token: abc', 'token: xyz')],
    ['a keyfile', () => edit(PROFILES, 'keyfile: /keys/bq.json', 'keyfile: /keys/other.json')],
    ['threads', () => edit(PROFILES, 'threads: 4', 'threads: 16')],
    ['the user', () => edit(PROFILES, 'user: me', 'user: you')],
    ['an unrelated field', () => edit(PROFILES, 'method: service-account', 'method: oauth\n      priority: batch')],
  ])('does not change when %s changes', (_what, change) => {
    const changed = change();
    expect(changed).not.toBe(PROFILES);
    expect(locations(changed)).toEqual(locations(PROFILES));
  });

  it('does not change when profiles change order', () => {
    expect(locations(DUCKDB + PROFILES)).toEqual(locations(PROFILES + DUCKDB));
    expect(locations(DUCKDB + PROFILES)).not.toEqual(locations(PROFILES));
  });

  it("renders {{ env_var('X', 'default') }} in a location from the environment, then its default", () => {
    const templated = edit(PROFILES, 'schema: dev_me', `schema: "{{ env_var('DBT_SCHEMA', 'dev_me') }}"`);
    expect(locations(templated, {})).toEqual(locations(PROFILES));
    expect(locations(templated, { DBT_SCHEMA: 'dev_me' })).toEqual(locations(PROFILES));
    expect(locations(templated, { DBT_SCHEMA: 'ci' })).toEqual(locations(edit(PROFILES, 'dev_me', 'ci')));
    expect(locations(templated, { DBT_SCHEMA: 'ci' })).not.toEqual(locations(templated, { DBT_SCHEMA: 'cd' }));
  });

  it('renders an env_var default target from the environment', () => {
    const templated = edit(PROFILES, 'target: dev', `target: "{{ env_var('DBT_DEFAULT', 'dev') }}"`);
    expect(locations(templated, {})).toEqual(locations(PROFILES));
    expect(locations(templated, { DBT_DEFAULT: 'prod' })).toEqual(
      locations(edit(PROFILES, 'target: dev', 'target: prod')),
    );
  });

  it('does not read an env_var in a password', () => {
    const templated = edit(PROFILES, 'password: secret', `password: "{{ env_var('DBT_PASSWORD') }}"`);
    const one = locations(templated, { DBT_PASSWORD: 'one' });
    expect(one).toBeDefined();
    expect(one).toEqual(locations(templated, { DBT_PASSWORD: 'two' }));
    expect(one).not.toContain('one');
  });

  it.each([
    ['a schema', 'schema: dev_me', 'schema: "{{ target.name }}"'],
    ['a host', 'host: localhost', `host: "{{ 'local' ~ 'host' }}"`],
    ['the default target', 'target: dev', `target: "{{ 'dev' if true else 'prod' }}"`],
  ])('is undefined when %s is a template other than env_var', (_what, from, to) => {
    expect(locations(edit(PROFILES, from, to), { PORT: '5432' })).toBeUndefined();
  });

  it('renders env_var with double quotes or a filter such as | int', () => {
    const port = (value: string, env: NodeJS.ProcessEnv) =>
      locations(edit(PROFILES, 'port: 5432', `port: ${JSON.stringify(value)}`), env);
    expect(port(`{{ env_var('PORT') | int }}`, { PORT: '5432' })).toBeDefined();
    expect(port(`{{ env_var('PORT') | int }}`, { PORT: '5432' })).toEqual(
      port('{{ env_var("PORT") }}', { PORT: '5432' }),
    );
    expect(port(`{{ env_var('PORT') | int }}`, { PORT: '5433' })).not.toEqual(
      port(`{{ env_var('PORT') | int }}`, { PORT: '5432' }),
    );
  });

  describe("for a known profile, only the build's target", () => {
    const ofTarget = (profilesText: string, target?: string) =>
      JSON.stringify(
        warehouseLocations({
          profilesText,
          profilesFile: join(workspaceRoot, 'analytics', 'profiles.yml'),
          projectDir: join(workspaceRoot, 'analytics'),
          workspaceRoot,
          env: {},
          profile: 'analytics',
          target,
        }),
      );

    it("changes with the target's own location, and not with another target's", () => {
      expect(ofTarget(edit(PROFILES, 'host: prod.example.com', 'host: other.example.com'), 'dev')).toBe(
        ofTarget(PROFILES, 'dev'),
      );
      expect(ofTarget(edit(PROFILES, 'host: localhost', 'host: other.example.com'), 'dev')).not.toBe(
        ofTarget(PROFILES, 'dev'),
      );
    });

    it("takes the profile's default target when none is asked, and names the target", () => {
      expect(ofTarget(PROFILES)).toBe(ofTarget(PROFILES, 'dev'));
      expect(ofTarget(PROFILES, 'prod')).not.toBe(ofTarget(PROFILES, 'dev'));
      expect(ofTarget(edit(PROFILES, 'target: dev', 'target: prod'))).toBe(ofTarget(PROFILES, 'prod'));
    });
  });

  it('ignores a template outside the location fields', () => {
    expect(locations(edit(PROFILES, 'user: me', 'user: "{{ target.name }}"'))).toEqual(locations(PROFILES));
  });

  describe('a DuckDB path', () => {
    const duckPath = (result: unknown) =>
      (result as { duck: { dev: { path: { file: string; token: string } } } }).duck.dev.path;

    it('is resolved against the project folder and shown relative to the workspace root', () => {
      expect(duckPath(locationsOf(DUCKDB)).file).toBe('analytics/data/warehouse.duckdb');
      expect(duckPath(locationsOf(edit(DUCKDB, 'data/', '../shared/'))).file).toBe('shared/warehouse.duckdb');
      expect(duckPath(locationsOf(edit(DUCKDB, 'data/', '/elsewhere/'))).file).toBe('/elsewhere/warehouse.duckdb');
    });

    it('changes the result when it changes', () => {
      expect(locations(edit(DUCKDB, 'data/', 'other/'))).not.toEqual(locations(DUCKDB));
    });

    it('gives two workspaces at different paths the same result when they hold the same token', () => {
      const otherRoot = makeTempDir();
      try {
        const here = duckPath(locationsOf(DUCKDB));
        const there = duckPath(locationsOf(DUCKDB, {}, otherRoot));
        expect(otherRoot).not.toBe(workspaceRoot);
        expect(there.file).toBe(here.file);
        expect(there.token).not.toBe(here.token);

        const tokens = join(otherRoot, '.dot', 'warehouses');
        const [tokenFile] = readdirSync(tokens);
        const record = JSON.parse(readFileSync(join(tokens, tokenFile), 'utf8'));
        writeFileSync(join(tokens, tokenFile), JSON.stringify({ ...record, token: here.token }));
        expect(locations(DUCKDB, {}, otherRoot)).toEqual(locations(DUCKDB));
      } finally {
        removeDir(otherRoot);
      }
    });

    it('is read without writing anything, and unkeyable until its token is made', () => {
      const request = locationRequest(DUCKDB);
      expect(warehouseLocations(request)).toBeUndefined();
      expect(readdirSync(workspaceRoot)).toEqual([]);
      issueDuckDbTokens(request);
      const keyed = JSON.stringify(warehouseLocations(request));
      expect(duckPath(JSON.parse(keyed)).token).toMatch(/^[0-9a-f-]{36}$/);
      issueDuckDbTokens(request);
      expect(JSON.stringify(warehouseLocations(request))).toBe(keyed);
    });

    it('is kept as written when in memory', () => {
      const memory = locationsOf(edit(DUCKDB, 'path: data/warehouse.duckdb', "path: ':memory:'"));
      expect(duckPath(memory)).toBe(':memory:');
    });
  });
});

describe('issueDuckDbToken', () => {
  let workspaceRoot: string;
  let file: string;
  beforeEach(() => {
    workspaceRoot = makeTempDir();
    file = join(workspaceRoot, 'warehouse.duckdb');
    writeFiles(workspaceRoot, { 'warehouse.duckdb': 'first database' });
  });
  afterEach(() => removeDir(workspaceRoot));

  const tokenFiles = () => readdirSync(join(workspaceRoot, '.dot', 'warehouses'));

  it('writes a token under .dot/warehouses and gives it back on the next call', () => {
    const token = issueDuckDbToken(workspaceRoot, file);
    expect(token).toMatch(/^[0-9a-f-]{36}$/);
    expect(tokenFiles()).toHaveLength(1);
    expect(readFileSync(join(workspaceRoot, '.dot', 'warehouses', tokenFiles()[0]), 'utf8')).toContain(token);
    expect(issueDuckDbToken(workspaceRoot, file)).toBe(token);
  });

  it('gives another file another token', () => {
    const other = join(workspaceRoot, 'other.duckdb');
    expect(issueDuckDbToken(workspaceRoot, other)).not.toBe(issueDuckDbToken(workspaceRoot, file));
    expect(tokenFiles()).toHaveLength(2);
  });

  it('keeps the token while the file a build recorded is unchanged', () => {
    const token = issueDuckDbToken(workspaceRoot, file);
    rememberDuckDbFile(workspaceRoot, file);
    writeFileSync(file, 'first database, written again in place');
    expect(issueDuckDbToken(workspaceRoot, file)).toBe(token);
    expect(issueDuckDbToken(workspaceRoot, file)).toBe(token);
  });

  it('makes a new token once the recorded file was deleted', () => {
    const token = issueDuckDbToken(workspaceRoot, file);
    rememberDuckDbFile(workspaceRoot, file);
    rmSync(file);
    const fresh = issueDuckDbToken(workspaceRoot, file);
    expect(fresh).not.toBe(token);
    expect(issueDuckDbToken(workspaceRoot, file)).toBe(fresh);
  });

  it('makes a new token once the recorded file was replaced by a new file', () => {
    const token = issueDuckDbToken(workspaceRoot, file);
    rememberDuckDbFile(workspaceRoot, file);
    // Made while the old file still exists, so the new file cannot reuse its inode.
    writeFileSync(`${file}.new`, 'second database');
    renameSync(`${file}.new`, file);
    expect(issueDuckDbToken(workspaceRoot, file)).not.toBe(token);
  });

  it('keeps the first recorded inode when a later build records a replaced file', () => {
    const token = issueDuckDbToken(workspaceRoot, file);
    rememberDuckDbFile(workspaceRoot, file);
    const held = openSync(file, 'r');
    try {
      rmSync(file);
      writeFileSync(file, 'second database');
      rememberDuckDbFile(workspaceRoot, file);
      expect(issueDuckDbToken(workspaceRoot, file)).not.toBe(token);
    } finally {
      closeSync(held);
    }
  });
});
