import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { relationsIn, schemasIn } from '../support/duckdb';
import { commitBeside } from '../../fixture-workspace/repo';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { VENV_BIN } from '../../fixture-workspace/paths';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';
import { startNxJob, type NxJob } from '../support/process-group';

/** dbt-duckdb runs a Python model in dbt's process, on the build's connection: this one waits for a file. */
const HELD_MODEL = `import os
import time


def model(dbt, session):
    release = os.environ["ANALYTICS_RELEASE_FILE"]
    deadline = time.time() + 300
    while not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.2)
    return session.sql("select 1 as released")
`;

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Routes out of the isolated schema that the guard of 0.4.0 let through (issue 14, part 1):
 * dbt functions, args and dbt wrappers that make dbt run something other than what was checked,
 * and a DuckDB path written with env_var().
 */

const short = (sha: string) => sha.slice(0, 8);
const refusalIn = (output: string) => output.split('\n').find((line) => line.includes('nx-dbt-isolated: '));

/** Functions get their custom schema as it is; every other node keeps dbt's default naming. */
const BARE_FUNCTION_SCHEMAS = `{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if node.resource_type == 'function' and custom_schema_name is not none -%}{{ custom_schema_name | trim }}
  {%- elif custom_schema_name is none -%}{{ target.schema }}
  {%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
`;

function functionFiles(schema: string): Record<string, string> {
  return {
    'analytics/functions/is_positive_int.sql': "select a_string ~ '^[0-9]+$'\n",
    'analytics/functions/functions.yml': `functions:
  - name: is_positive_int
    arguments:
      - name: a_string
        data_type: text
    returns:
      data_type: boolean
    config:
      schema: ${schema}
`,
  };
}

function functionsIn(schema: string): Promise<string[]> {
  return withPostgres(async (client) => {
    const result = await client.query<{ name: string }>(
      'select p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1 order by 1',
      [schema],
    );
    return result.rows.map((row) => row.name);
  });
}

describe('routes out of the isolated schema', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  const build = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    ws.nx(['run', 'analytics:isolated-build', ...args], env);
  const recordOf = (commit: string, dbtTarget = 'dev') =>
    JSON.parse(readFileSync(join(ws.dir, '.dot', short(commit), 'analytics', dbtTarget, 'build.json'), 'utf8'));

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(() => ws.remove());

  describe('dbt functions (UDFs) on PostgreSQL', () => {
    const base = `nxdbt_udf_${randomBytes(4).toString('hex')}`;
    const env = { ANALYTICS_PG_SCHEMA: base };
    const production = `${base}_production_udfs`;
    afterAll(() => dropSchemasStartingWith(base));

    it('refuses a function that generate_schema_name puts outside the isolated schema, before any SQL', async () => {
      const commit = commitBeside(ws.dir, ws.main, 'udf-escape', 'A function in a bare schema', {
        'analytics/macros/generate_schema_name.sql': BARE_FUNCTION_SCHEMAS,
        ...functionFiles(production),
      });
      const before = ws.gitState();

      const result = await build([`--ref=${commit}`, '--target=pg'], env);
      expect(result.code).not.toBe(0);
      expect(refusalIn(result.output)).toContain(`function.analytics.is_positive_int → test.${production}`);
      expect(await schemasStartingWith(base)).toEqual([]);
      expect(recordOf(commit, 'pg')).toMatchObject({ status: 'failed', error: expect.stringContaining('refused') });
      expect(ws.gitState()).toEqual(before);
    });

    it('builds a function into a custom schema of the build, which clean then drops with the rest', async () => {
      const commit = commitBeside(
        ws.dir,
        ws.main,
        'udf-inside',
        'A function in a custom schema',
        functionFiles('udfs'),
      );
      const schema = `${base}_${short(commit)}`;

      const result = await build([`--ref=${commit}`, '--target=pg'], env);
      expect(result.output).toContain('Isolated build succeeded');
      expect(await functionsIn(`${schema}_udfs`)).toEqual(['is_positive_int']);
      expect(recordOf(commit, 'pg').schemas).toContain(`${schema}_udfs`);

      const cleaned = await ws.nx(['run', 'analytics:clean', `--ref=${commit}`, '--target=pg'], env);
      expect(cleaned.code).toBe(0);
      expect(await schemasStartingWith(schema)).toEqual([]);
    });
  });

  describe('the run that executes is the run that was checked', () => {
    it.each([
      ['a second profiles folder', ['--args=--profiles-dir', '--args=.'], '--profiles-dir', 'profilesDir'],
      ['vars that flip a macro', ['--args=--vars', '--args={publish: true}'], '--vars', 'the vars option'],
      ['another dbt target', ['--args=-t', '--args=ci'], '-t', 'the target option'],
    ])('refuses args that give dbt %s, before anything runs', async (_what, args, flag, option) => {
      const result = await build(['--ref=v1.0', ...args]);
      expect(result.code).not.toBe(0);
      const refusal = refusalIn(result.output);
      expect(refusal).toContain(`args holds ${flag}, which the plugin sets itself`);
      expect(refusal).toContain(option);
      expect(existsSync(warehouse) ? schemasIn(warehouse, 'analytics') : []).toEqual([]);
    });

    it('refuses a dbtExecutable that is a wrapper script, which could run anything once checked', async () => {
      const wrapper = join(ws.dir, 'tools', 'dbt-wrapper.sh');
      mkdirSync(join(ws.dir, 'tools'), { recursive: true });
      writeFileSync(wrapper, `#!/bin/sh\nexec ${join(VENV_BIN, 'dbt')} "$@"\n`);
      chmodSync(wrapper, 0o755);

      const result = await build(['--ref=v1.0', '--dbtExecutable=tools/dbt-wrapper.sh']);
      expect(result.code).not.toBe(0);
      expect(refusalIn(result.output)).toContain(`dbt executable ${wrapper} cannot run an isolated build`);
      expect(existsSync(warehouse) ? schemasIn(warehouse, 'analytics') : []).toEqual([]);
    });
  });

  describe('a DuckDB path written with env_var()', () => {
    it('keeps the +database check: a model configured into another database is refused', async () => {
      const ciFile = join(ws.dir, 'ci-database.duckdb');
      const commit = commitBeside(ws.dir, ws.main, 'other-database', 'A model in another database', {
        'analytics/models/marts/exported_orders.sql':
          "{{ config(materialized='table', database='other') }}\nselect * from {{ ref('orders') }}\n",
      });

      const result = await build([`--ref=${commit}`, '--target=ci'], { ANALYTICS_CI_DUCKDB: ciFile });
      expect(result.code).not.toBe(0);
      expect(refusalIn(result.output)).toContain(
        `model.analytics.exported_orders → other.analytics_ci_${short(commit)}`,
      );
      expect(existsSync(ciFile) ? schemasIn(ciFile, 'analytics_ci') : []).toEqual([]);
    });

    it('keeps the one-writer lock: two commits built at once into the file both succeed, one after the other', async () => {
      const ciFile = join(ws.dir, 'ci-lock.duckdb');
      const release = join(ws.dir, 'release-the-writer');
      const env = { ANALYTICS_CI_DUCKDB: ciFile, ANALYTICS_RELEASE_FILE: release };
      // A Python model that holds the first build's connection until the test lets it go, so
      // the second build reaches the file while the first still writes it, whatever the load.
      const holding = commitBeside(ws.dir, ws.main, 'holding-writer', 'A model that waits to be released', {
        'analytics/models/marts/held.py': HELD_MODEL,
      });
      const commits = [holding, ws.excludeReturned];
      const args = (commit: string) => [
        'run',
        'analytics:isolated-build',
        `--ref=${commit}`,
        '--target=ci',
        '--skip-nx-cache',
      ];
      const first = startNxJob(ws.dir, args(holding), env);
      let second: NxJob | undefined;
      try {
        await first.waitFor(/• dbt build into schema/);
        second = startNxJob(ws.dir, args(ws.excludeReturned), env);
        await second.waitFor(new RegExp(`waiting for another build to finish writing ${escaped(ciFile)}`));
      } finally {
        writeFileSync(release, '');
      }
      const results = [await first.ended, await second.ended];
      for (const result of results) {
        expect(result.output).toContain('Isolated build succeeded');
        expect(result.output).not.toContain('Could not set lock');
        expect(result.output).toContain(ciFile);
      }
      for (const commit of commits) {
        expect(relationsIn(ciFile, `analytics_ci_${short(commit)}`)).toContain(`analytics_ci_${short(commit)}.orders`);
      }
    });
  });
});
