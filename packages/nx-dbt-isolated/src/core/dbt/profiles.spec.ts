import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { UserError } from '../workspace/errors';
import { findProfilesDir, isolateProfile, type IsolateProfileRequest } from './profiles';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import { DEV_POSTGRES, profilesYaml } from '../testing/profiles';
import { thrown } from '../testing/thrown';

const FILE = '/home/me/.dbt/profiles.yml';
const PROJECT_DIR = '/ws/analytics';

function isolate(text: string, request: Partial<IsolateProfileRequest> = {}) {
  return isolateProfile({
    text,
    file: FILE,
    profile: 'analytics',
    suffix: 'abcd1234',
    projectDir: PROJECT_DIR,
    ...request,
  });
}

const DEV = { ...DEV_POSTGRES, password: "{{ env_var('DBT_PASSWORD') }}", threads: 4 };
const POSTGRES = `${profilesYaml('analytics', { dev: DEV })}    prod:
      type: postgres
      host: prod.example.com
      port: 5433
      user: deploy
      password: "{{ env_var('PROD_PASSWORD') }}"
      dbname: warehouse_prod
      schema: analytics
      threads: 8
other:
  outputs:
    default:
      type: duckdb
`;

const duckdb = (output: string) => `
analytics:
  target: dev
  outputs:
    dev:
      type: duckdb
${output
  .trim()
  .split('\n')
  .map((line) => `      ${line}`)
  .join('\n')}
`;

describe('isolateProfile', () => {
  it('writes only the chosen target, makes it the default and renames its schema', () => {
    const result = isolate(POSTGRES, { target: 'prod' });
    expect(result.target).toBe('prod');
    expect(result.baseSchema).toBe('analytics');
    expect(result.schema).toBe('analytics_abcd1234');
    expect(result.warehouse).toEqual({ type: 'postgres', location: 'prod.example.com:5433/warehouse_prod' });
    expect(result.database).toBe('warehouse_prod');
    expect(parse(result.yaml)).toEqual({
      analytics: {
        target: 'prod',
        outputs: {
          prod: {
            type: 'postgres',
            host: 'prod.example.com',
            port: 5433,
            user: 'deploy',
            password: "{{ env_var('PROD_PASSWORD') }}",
            dbname: 'warehouse_prod',
            schema: 'analytics_abcd1234',
            threads: 8,
          },
        },
      },
    });
    expect(result.yaml).not.toContain('dev_me');
    expect(result.yaml).not.toContain('other');
  });

  it("uses the profile's default target when none is asked for", () => {
    const result = isolate(POSTGRES);
    expect(result.target).toBe('dev');
    expect(result.schema).toBe('dev_me_abcd1234');
    const written = parse(result.yaml);
    expect(written.analytics.target).toBe('dev');
    expect(Object.keys(written.analytics.outputs)).toEqual(['dev']);
  });

  it("falls back to the target 'default' when the profile names none", () => {
    const result = isolate(POSTGRES, { profile: 'other' });
    expect(result.target).toBe('default');
    expect(result.schema).toBe('main_abcd1234');
  });

  it('refuses an unknown profile, listing the profiles there are', () => {
    const error = thrown(() => isolate(POSTGRES, { profile: 'missing' }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain("'missing'");
    expect(error.message).toContain('analytics, other');
    expect(error.message).toContain(FILE);
  });

  it('refuses an unknown target, listing the targets there are', () => {
    const error = thrown(() => isolate(POSTGRES, { target: 'staging' }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain("'staging'");
    expect(error.message).toContain('dev, prod');
  });

  it('refuses a profiles.yml that is not valid YAML', () => {
    const error = thrown(() => isolate('analytics:\n  outputs: [unclosed\n'));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(FILE);
  });

  it('keeps env_var() text verbatim in the file, in a password and in the schema, and names the schema rendered', () => {
    const text = `
analytics:
  target: dev
  outputs:
    dev:
      type: postgres
      host: "{{ env_var('DBT_HOST') }}"
      user: me
      password: "{{ env_var('DBT_PASSWORD') }}"
      dbname: warehouse
      schema: "{{ env_var('S') }}"
`;
    const result = isolate(text, { env: { S: 'analytics', DBT_PASSWORD: 'secret' } });
    expect(result.schema).toBe('analytics_abcd1234');
    expect(result.yaml).not.toContain('secret');
    expect(result.yaml).toContain(`password: "{{ env_var('DBT_PASSWORD') }}"`);
    expect(result.yaml).toContain(`schema: "{{ env_var('S') }}_abcd1234"`);
    const output = parse(result.yaml).analytics.outputs.dev;
    expect(output.password).toBe("{{ env_var('DBT_PASSWORD') }}");
    expect(output.host).toBe("{{ env_var('DBT_HOST') }}");
    expect(output.schema).toBe("{{ env_var('S') }}_abcd1234");
  });

  describe('DuckDB paths', () => {
    const pathOf = (path: string) =>
      parse(isolate(duckdb(`path: ${path}\nschema: main`)).yaml).analytics.outputs.dev.path;

    it('makes a relative path absolute against the project folder', () => {
      expect(pathOf('warehouse.duckdb')).toBe('/ws/analytics/warehouse.duckdb');
      expect(pathOf('../data/warehouse.duckdb')).toBe('/ws/data/warehouse.duckdb');
      const result = isolate(duckdb('path: ./warehouse.duckdb\nschema: main'));
      expect(result.warehouse).toEqual({ type: 'duckdb', location: '/ws/analytics/warehouse.duckdb' });
    });

    it('names the database as dbt-duckdb does: after the file, or as configured', () => {
      expect(isolate(duckdb('path: data/warehouse.duckdb\nschema: main')).database).toBe('warehouse');
      expect(isolate(duckdb("path: ':memory:'\nschema: main")).database).toBe('memory');
      expect(isolate(duckdb('path: w.duckdb\ndatabase: lake\nschema: main')).database).toBe('lake');
      expect(isolate(duckdb('path: "md:my_db"\nschema: main')).database).toBeUndefined();
    });

    it.each([
      ['an absolute path', '/data/warehouse.duckdb'],
      ['the in-memory database', "':memory:'"],
      ['a MotherDuck database', "'md:my_db'"],
    ])('keeps %s', (_what, path) => {
      expect(pathOf(path)).toBe(parse(`v: ${path}`).v);
    });

    // The writer lock and the +database check must name the file dbt opens (issue 14, 1.3).
    it('renders an env_var() path into the file dbt opens, so the lock and the database check know it', () => {
      const text = duckdb(`path: "{{ env_var('DUCKDB_PATH', 'fallback.duckdb') }}"\nschema: main`);
      const fromEnv = isolate(text, { env: { DUCKDB_PATH: 'data/ci.duckdb' } });
      expect(parse(fromEnv.yaml).analytics.outputs.dev.path).toBe('/ws/analytics/data/ci.duckdb');
      expect(fromEnv.warehouse).toEqual({ type: 'duckdb', location: '/ws/analytics/data/ci.duckdb' });
      expect(fromEnv.database).toBe('ci');
      const fallback = isolate(text, { env: {} });
      expect(fallback.warehouse.location).toBe('/ws/analytics/fallback.duckdb');
      expect(fallback.database).toBe('fallback');
    });

    it('refuses a path written with a template other than env_var(), in one line naming it', () => {
      const error = thrown(() => isolate(duckdb(`path: "{{ target.name }}.duckdb"\nschema: main`)));
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toBe(
        `the DuckDB path of target 'dev' in ${FILE} is a template the plugin cannot render ({{ target.name }}.duckdb): the writer lock and the isolation check must know the file, so write the path plainly or with {{ env_var() }} only.`,
      );
    });

    // DuckDB expands `~` itself, so plain dbt writes ~/warehouse.duckdb into the home folder.
    it('keeps a path under ~ in the home folder, not under the project folder', () => {
      expect(['~/warehouse.duckdb', join(homedir(), 'warehouse.duckdb')]).toContain(pathOf('~/warehouse.duckdb'));
    });

    it('defaults a missing schema to main', () => {
      const result = isolate(duckdb('path: /data/warehouse.duckdb'));
      expect(result.baseSchema).toBe('main');
      expect(result.schema).toBe('main_abcd1234');
      expect(parse(result.yaml).analytics.outputs.dev.schema).toBe('main_abcd1234');
    });
  });

  it('refuses a postgres target without a schema, saying where', () => {
    const text = `
analytics:
  target: dev
  outputs:
    dev:
      type: postgres
      host: localhost
      dbname: warehouse
`;
    const error = thrown(() => isolate(text));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain("'schema:'");
    expect(error.message).toContain('analytics.outputs.dev');
  });

  it('renames the BigQuery dataset, and the schema when there is no dataset', () => {
    const bigquery = (key: string) => `
analytics:
  target: dev
  outputs:
    dev:
      type: bigquery
      method: oauth
      project: my-gcp-project
      ${key}: marts
`;
    const withDataset = isolate(bigquery('dataset'));
    expect(withDataset.schema).toBe('marts_abcd1234');
    const dev = parse(withDataset.yaml).analytics.outputs.dev;
    expect(dev.dataset).toBe('marts_abcd1234');
    expect(dev).not.toHaveProperty('schema');
    expect(withDataset.warehouse).toEqual({ type: 'bigquery', location: 'my-gcp-project/' });
    expect(withDataset.database).toBe('my-gcp-project');

    const withSchema = isolate(bigquery('schema'));
    expect(withSchema.schema).toBe('marts_abcd1234');
    const output = parse(withSchema.yaml).analytics.outputs.dev;
    expect(output.schema).toBe('marts_abcd1234');
    expect(output).not.toHaveProperty('dataset');
  });

  it('resolves YAML merge keys into plain values', () => {
    const text = `
defaults: &defaults
  type: postgres
  host: localhost
  port: 5432
  user: me
  password: "{{ env_var('DBT_PASSWORD') }}"
  dbname: warehouse
analytics:
  target: dev
  outputs:
    dev:
      <<: *defaults
      schema: dev_me
    ci:
      <<: *defaults
      host: ci.example.com
      schema: ci
`;
    const result = isolate(text, { target: 'ci' });
    expect(result.yaml).not.toContain('<<');
    expect(result.yaml).not.toContain('*defaults');
    expect(parse(result.yaml)).toEqual({
      analytics: {
        target: 'ci',
        outputs: {
          ci: {
            type: 'postgres',
            host: 'ci.example.com',
            port: 5432,
            user: 'me',
            password: "{{ env_var('DBT_PASSWORD') }}",
            dbname: 'warehouse',
            schema: 'ci_abcd1234',
          },
        },
      },
    });
  });

  it("keeps the file's global config block", () => {
    const result = isolate(`config:\n  send_anonymous_usage_stats: false\n${POSTGRES}`);
    expect(parse(result.yaml).config).toEqual({ send_anonymous_usage_stats: false });
  });
});

describe('findProfilesDir', () => {
  let root: string;
  let dirs: { option: string; env: string; project: string; home: string };

  beforeEach(() => {
    root = makeTempDir();
    dirs = {
      option: join(root, 'option'),
      env: join(root, 'env'),
      project: join(root, 'ws', 'analytics'),
      home: join(root, 'home'),
    };
    writeFiles(root, {
      'option/profiles.yml': 'a: {}\n',
      'env/profiles.yml': 'a: {}\n',
      'ws/analytics/profiles.yml': 'a: {}\n',
      'home/.dbt/profiles.yml': 'a: {}\n',
    });
  });
  afterEach(() => removeDir(root));

  const lookup = (without: string[] = []) => ({
    optionDir: without.includes('option') ? undefined : dirs.option,
    envDir: without.includes('env') ? undefined : dirs.env,
    projectDir: dirs.project,
    homeDir: dirs.home,
  });

  it('looks in the option folder, then DBT_PROFILES_DIR, then the project, then ~/.dbt', () => {
    expect(findProfilesDir(lookup())).toBe(dirs.option);
    expect(findProfilesDir(lookup(['option']))).toBe(dirs.env);
    expect(findProfilesDir(lookup(['option', 'env']))).toBe(dirs.project);
    removeDir(join(dirs.project, 'profiles.yml'));
    expect(findProfilesDir(lookup(['option', 'env']))).toBe(join(dirs.home, '.dbt'));
  });

  it('refuses an explicit folder without profiles.yml, naming it, even when others have one', () => {
    removeDir(join(dirs.option, 'profiles.yml'));
    const fromOption = thrown(() => findProfilesDir(lookup()));
    expect(fromOption).toBeInstanceOf(UserError);
    expect(fromOption.message).toContain(dirs.option);
    expect(fromOption.message).toContain('profilesDir option');

    removeDir(join(dirs.env, 'profiles.yml'));
    const fromEnv = thrown(() => findProfilesDir(lookup(['option'])));
    expect(fromEnv).toBeInstanceOf(UserError);
    expect(fromEnv.message).toContain(dirs.env);
    expect(fromEnv.message).toContain('DBT_PROFILES_DIR');
  });

  it('names both places it looked when there is no profiles.yml at all', () => {
    removeDir(join(dirs.project, 'profiles.yml'));
    removeDir(join(dirs.home, '.dbt'));
    const error = thrown(() => findProfilesDir(lookup(['option', 'env'])));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(dirs.project);
    expect(error.message).toContain(join(dirs.home, '.dbt'));
  });

  describe('a default target written as a template', () => {
    const templated = (target: string) => POSTGRES.replace('  target: dev', `  target: "${target}"`);

    it("renders {{ env_var('X', 'default') }} from the environment, then its default", () => {
      const text = templated("{{ env_var('ANALYTICS_TARGET', 'dev') }}");
      expect(isolate(text, { env: { ANALYTICS_TARGET: 'prod' } }).target).toBe('prod');
      expect(isolate(text, { env: {} }).target).toBe('dev');
    });

    it('asks for --target when the template is more than env_var', () => {
      const error = thrown(() => isolate(templated("{{ 'dev' if true else 'prod' }}"), { env: {} }));
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toMatch(/cannot render .* pass the target with --target/);
    });
  });

  it('quotes values that PyYAML would not read back as strings', () => {
    const text = POSTGRES.replace(`password: "{{ env_var('DBT_PASSWORD') }}"`, 'password: "="');
    const yaml = isolate(text).yaml;
    expect(yaml).toContain('password: "="');
    expect(parse(yaml).analytics.outputs.dev.password).toBe('=');
  });
});
