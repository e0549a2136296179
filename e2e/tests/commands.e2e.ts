import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { commitBeside } from '../../fixture-workspace/repo';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';
import { schemasIn } from '../support/duckdb';
import { dropSchemasStartingWith, withPostgres } from '../support/postgres';
import { outcome, SUCCEEDED } from '../support/outcome';
import { startNxJob } from '../support/process-group';
import { buildRecordPath, postgresRows, readBuildRecord } from '../support/workflows';

/**
 * `nx run analytics:dbt --command=…` and `nx run analytics:docs`: dbt's own commands on a commit's
 * isolated build (DuckDB). A source over the seeded raw orders is added in a commit of its own, so
 * that `source freshness` has something to check.
 */

const SOURCES = `version: 2
sources:
  - name: landing
    schema: "{{ target.schema }}_raw"
    loaded_at_field: "cast(order_date as timestamp)"
    freshness:
      warn_after: { count: 1, period: day }
    tables:
      - name: raw_orders
`;

/** A model that fails while ANALYTICS_FLAKY=fail (a warehouse that was down), and one downstream of it. */
const FLAKY = {
  'analytics/models/marts/flaky.sql':
    "select {% if env_var('ANALYTICS_FLAKY', '') == 'fail' %} error('the warehouse was down') {% else %} 1 {% endif %} as ok\n",
  'analytics/models/marts/after_flaky.sql': "select ok from {{ ref('flaky') }}\n",
};

const short = (sha: string) => sha.slice(0, 8);

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function fetchWhenUp(url: string, timeoutMs = 60_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(url);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

describe('dbt commands on a commit’s isolated build', () => {
  let workspace: TestWorkspace;
  let withSource: string;
  let flaky: string;
  let warehouse: string;
  const targetOf = (commit: string) => join(workspace.dir, '.dot', short(commit), 'analytics', 'dev', 'target');
  const dbt = (args: string[]) => workspace.nx(['run', 'analytics:dbt', ...args]);

  beforeAll(() => {
    workspace = createTestWorkspace();
    warehouse = join(workspace.dir, 'analytics', 'warehouse.duckdb');
    withSource = commitBeside(workspace.dir, workspace.main, 'with-source', 'A source over the raw orders', {
      'analytics/models/staging/_sources.yml': SOURCES,
    });
    flaky = commitBeside(workspace.dir, workspace.main, 'flaky', 'A model that can fail', FLAKY);
  });
  afterAll(() => workspace?.remove());

  it('lists the nodes of a commit with dbt ls, building nothing and creating no schema', async () => {
    const before = workspace.gitState();
    const listed = await dbt(['--ref=feature/vip', '--command=ls', '--select=customers+']);
    expect(outcome(listed)).toEqual(SUCCEEDED);
    expect(listed.output).toMatch(/^analytics\.marts\.vip_customers$/m);
    expect(listed.output).toContain(`dbt ls ran on analytics at feature/vip (${workspace.featureVip.slice(0, 12)})`);
    // v1.0 has no vip_customers (e2e/fixtures/history).
    const older = await dbt(['--ref=v1.0', '--command=ls', '--select=customers+']);
    expect(outcome(older)).toEqual(SUCCEEDED);
    expect(older.output).toMatch(/^analytics\.marts\.customer_averages$/m);
    expect(older.output).not.toMatch(/vip_customers/);
    for (const commit of [workspace.featureVip, workspace.v1]) {
      expect(existsSync(buildRecordPath(workspace.dir, commit))).toBe(false);
      expect(existsSync(warehouse) ? schemasIn(warehouse, `analytics_${short(commit)}`) : []).toEqual([]);
    }
    expect(workspace.gitState()).toBe(before);
  });

  it('shows a model and an inline query of a commit, building it first through Nx and leaving its record alone', async () => {
    const shown = await dbt(['--ref=main', '--command=show', '--select=customers', '--limit=2']);
    expect(outcome(shown)).toEqual(SUCCEEDED);
    expect(shown.output).toMatch(/Successfully ran target isolated-build/);
    expect(shown.output).toMatch(/Previewing node 'customers'/);
    // dbt would load a seed to show it: show leaves seeds out of any selection.
    const upstream = await dbt(['--ref=main', '--command=show', '--select=+stg_customers']);
    expect(outcome(upstream)).toEqual(SUCCEEDED);
    expect(upstream.output).toMatch(/Previewing node 'stg_customers'/);
    expect(upstream.output).not.toMatch(/raw_customers/);
    const schema = `analytics_${short(workspace.main)}`;
    const record = readFileSync(buildRecordPath(workspace.dir, workspace.main), 'utf8');
    expect(JSON.parse(record)).toMatchObject({ status: 'succeeded', command: 'build', schema });

    const [{ n }] = queryDuckDb<{ n: bigint | number }>(warehouse, `select count(*) as n from "${schema}"."orders"`);
    const counted = await dbt([
      '--ref=main',
      '--command=show',
      "--inline=select count(*) as n from {{ ref('orders') }}",
    ]);
    expect(outcome(counted)).toEqual(SUCCEEDED);
    expect(counted.output).not.toMatch(/Successfully ran target isolated-build/);
    expect(counted.output).toMatch(new RegExp(`^\\|\\s+${Number(n)}\\s+\\|$`, 'm'));
    expect(readFileSync(buildRecordPath(workspace.dir, workspace.main), 'utf8')).toBe(record);
  });

  it('writes a commit’s docs: a catalog of the build’s own schemas beside its artifacts, and the pages', async () => {
    const result = await workspace.nx(['run', 'analytics:docs', '--ref=main', '--serve=false']);
    expect(outcome(result)).toEqual(SUCCEEDED);
    const schema = `analytics_${short(workspace.main)}`;
    const catalog = JSON.parse(readFileSync(join(targetOf(workspace.main), 'catalog.json'), 'utf8'));
    const catalogued = Object.values(catalog.nodes as Record<string, { metadata: { schema: string; name: string } }>)
      .map(({ metadata }) => `${metadata.schema}.${metadata.name}`)
      .sort();
    const tables = queryDuckDb<{ relation: string }>(
      warehouse,
      `select table_schema || '.' || table_name as relation from information_schema.tables where table_schema like '${schema}%' order by 1`,
    ).map(({ relation }) => relation);
    expect(catalogued).toEqual(tables);
    expect(catalogued).toContain(`${schema}.customers`);
    const pages = join(
      workspace.dir,
      '.dot',
      short(workspace.main),
      'analytics',
      'dev',
      'commands',
      'docs-generate',
      'target',
    );
    expect(readdirSync(pages)).toEqual(expect.arrayContaining(['index.html', 'static_index.html', 'manifest.json']));
    expect(readFileSync(join(pages, 'static_index.html'), 'utf8')).toContain('customer_averages');
    expect(readBuildRecord(workspace.dir, workspace.main)).toMatchObject({ status: 'succeeded', command: 'build' });
  });

  it('serves a commit’s docs with dbt docs serve until stopped, then lets go of the checkout and the port', async () => {
    const port = await freePort();
    const job = startNxJob(workspace.dir, ['run', 'analytics:docs', '--ref=main', `--port=${port}`]);
    try {
      await job.waitFor(/Serving docs at/, 120_000);
      const catalog = (await (await fetchWhenUp(`http://127.0.0.1:${port}/catalog.json`)).json()) as { nodes: object };
      expect(Object.keys(catalog.nodes)).toContain('model.analytics.customer_averages');
      const page = await fetch(`http://127.0.0.1:${port}/index.html`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      const leases = join(workspace.dir, '.dot', 'locks', 'leases', workspace.main);
      expect(readdirSync(leases)).toHaveLength(1);
    } finally {
      job.signal('SIGINT');
      await job.ended;
    }
    expect(readdirSync(join(workspace.dir, '.dot', 'locks', 'leases', workspace.main))).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it('checks a commit’s source freshness and keeps sources.json beside its build', async () => {
    const built = await workspace.nx(['run', 'analytics:isolated-build', `--ref=${withSource}`]);
    expect(outcome(built)).toEqual(SUCCEEDED);
    const result = await dbt([`--ref=${withSource}`, '--command=source freshness']);
    expect(outcome(result)).toEqual(SUCCEEDED);
    const sources = JSON.parse(readFileSync(join(targetOf(withSource), 'sources.json'), 'utf8'));
    // The fixture's orders are from 2024: older than a day is a warning, which dbt reports and passes.
    expect(sources.results).toEqual([
      expect.objectContaining({ unique_id: 'source.analytics.landing.raw_orders', status: 'warn' }),
    ]);
  });

  it('refuses run-operation where the macro’s SQL cannot be contained, in one line, running nothing', async () => {
    const result = await dbt(['--ref=main', '--command=run-operation', '--macro=cents_to_dollars']);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(
      /nx-dbt-isolated: run-operation runs cents_to_dollars's SQL, which the isolation check cannot read before it runs: add --strictIsolation \(PostgreSQL\)/,
    );
    const commands = join(workspace.dir, '.dot', short(workspace.main), 'analytics', 'dev', 'commands');
    expect(readdirSync(commands).sort()).toEqual(['docs-generate', 'show']);
  });

  it.each([
    [
      ['--ref=main', '--command=show'],
      'dbt show needs a node or a query: add --select=<model> or --inline="select …".',
    ],
    [['--ref=main', '--command=ls', '--inline=select 1'], '--inline is for --command=show, not ls: leave it out.'],
    [
      ['--ref=main', '--command=ls', '--args=--target-path=elsewhere'],
      'args holds --target-path, which the plugin sets itself',
    ],
    [
      ['--ref=main', '--command=show', '--select=customers', '--args=--full-refresh'],
      "args holds --full-refresh, which dbt show on a commit's build does not take",
    ],
    [
      ['--ref=main', '--command=show', '--select=customers', '--strictIsolation'],
      "--strictIsolation contains run-operation's macro; dbt show runs as the profile's user",
    ],
    // A commit with no build: refused before it is built.
    [
      ['--ref=feature/vip', '--command=run-operation', '--macro=cents_to_dollars', '--strictIsolation'],
      'run-operation runs under strictIsolation, which the plugin can do on PostgreSQL only, and dbt target dev is duckdb',
    ],
  ])('refuses %j in one line before any dbt runs', async (args, line) => {
    const result = await dbt(args);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain(`nx-dbt-isolated: ${line}`);
    expect(result.output).not.toMatch(/Running with dbt/);
  });

  it('retries a failed build: dbt retry runs what failed or was skipped, and the build is then the commit’s full build', async () => {
    const failed = await workspace.nx(['run', 'analytics:isolated-build', '--ref=flaky'], { ANALYTICS_FLAKY: 'fail' });
    expect(failed.code).not.toBe(0);
    expect(readBuildRecord(workspace.dir, flaky)).toMatchObject({ status: 'failed' });
    const failedResults = JSON.parse(readFileSync(join(targetOf(flaky), 'run_results.json'), 'utf8'));
    const statusOf = (results: { results: { unique_id: string; status: string }[] }) =>
      Object.fromEntries(results.results.map(({ unique_id, status }) => [unique_id, status]));
    expect(statusOf(failedResults)).toMatchObject({
      'model.analytics.flaky': 'error',
      'model.analytics.after_flaky': 'skipped',
    });

    const retried = await workspace.nx(['run', 'analytics:isolated-build', '--ref=flaky', '--command=retry']);
    expect(outcome(retried)).toEqual(SUCCEEDED);
    const record = readBuildRecord(workspace.dir, flaky);
    expect(record).toMatchObject({
      status: 'succeeded',
      command: 'build',
      contents: { complete: true, variedBy: [] },
      retried: { status: 'failed' },
    });
    const results = statusOf(JSON.parse(readFileSync(join(targetOf(flaky), 'run_results.json'), 'utf8')));
    // Every node of the failed build keeps a result: the retried ones theirs, the others the first run's.
    expect(Object.keys(results).sort()).toEqual(Object.keys(statusOf(failedResults)).sort());
    expect(results).toMatchObject({ 'model.analytics.flaky': 'success', 'model.analytics.after_flaky': 'success' });
    const schema = `analytics_${short(flaky)}`;
    expect(queryDuckDb(warehouse, `select ok from "${schema}"."after_flaky"`)).toEqual([{ ok: 1 }]);

    // Another name of the commit is served the retried build, with no dbt run.
    const plain = await workspace.nx(['run', 'analytics:isolated-build', `--ref=${flaky}`]);
    expect(outcome(plain)).toEqual(SUCCEEDED);
    expect(plain.output).toMatch(/restored the full build of .* under the same key: no dbt run/);
    const selected = await workspace.nx([
      'run',
      'analytics:isolated-build',
      '--ref=flaky',
      '--command=retry',
      '--select=flaky',
    ]);
    expect(selected.output).toContain(
      "nx-dbt-isolated: --command=retry reruns the failed build with that build's own selection and arguments: leave out --select.",
    );
    const again = await workspace.nx(['run', 'analytics:isolated-build', `--ref=${flaky}`, '--command=retry']);
    expect(again.code).not.toBe(0);
    expect(again.output).toContain(`nx-dbt-isolated: nothing to retry: the build of analytics at ${flaky} made at`);
  });

  it('refuses to retry a commit this workspace never built, in one line', async () => {
    const result = await workspace.nx(['run', 'analytics:isolated-build', '--ref=feature/vip', '--command=retry']);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain(
      'nx-dbt-isolated: nothing to retry: this workspace has no build of analytics at feature/vip; build it (nx run analytics:isolated-build --ref=feature/vip).',
    );
  });
});

describe('run-operation on a commit’s isolated build, contained by strictIsolation (PostgreSQL)', () => {
  const id = randomBytes(4).toString('hex');
  const base = `nxdbt_ops_${id}`;
  const victim = `nxdbt_ops_victim_${id}`;
  const env = { ANALYTICS_PG_SCHEMA: base };
  const OPERATIONS = `{% macro add_answer(answer) %}
  {% do run_query("create table " ~ target.schema ~ ".answers as select " ~ answer ~ " as answer") %}
{% endmacro %}
{% macro drop_victim() %}
  {% do run_query("drop schema ${victim} cascade") %}
{% endmacro %}
`;
  let workspace: TestWorkspace;
  let operations: string;
  const operation = (...args: string[]) =>
    workspace.nx(
      [
        'run',
        'analytics:dbt',
        '--ref=operations',
        '--target=pg',
        '--command=run-operation',
        '--strictIsolation',
        ...args,
      ],
      env,
    );

  beforeAll(async () => {
    workspace = createTestWorkspace();
    operations = commitBeside(workspace.dir, workspace.main, 'operations', 'Macros to run', {
      'analytics/macros/operations.sql': OPERATIONS,
    });
    await withPostgres(async (client) => {
      await client.query(`create schema ${victim}`);
      await client.query(`create table ${victim}.accounts as select 1 as id`);
    });
  }, 120_000);
  afterAll(async () => {
    await dropSchemasStartingWith(base);
    await dropSchemasStartingWith(victim);
    workspace?.remove();
  }, 120_000);

  it('runs a macro that writes into the build’s schema, after building the commit through Nx', async () => {
    const result = await operation('--macro=add_answer', '--macroArgs={answer: 42}');
    expect(outcome(result)).toEqual(SUCCEEDED);
    expect(result.output).toMatch(/Successfully ran target isolated-build/);
    expect(result.output).toMatch(/strictIsolation: dbt runs as role/);
    const schema = `${base}_${short(operations)}`;
    expect(await postgresRows(`${schema}.answers`)).toEqual([{ answer: 42 }]);
    // What the build's role made belongs to the profile's user once the role is gone.
    const owners = await withPostgres(
      async (client) =>
        (
          await client.query<{ tableowner: string }>(
            'select tableowner from pg_tables where schemaname = $1 and tablename = $2',
            [schema, 'answers'],
          )
        ).rows,
    );
    expect(owners).toEqual([{ tableowner: 'postgres' }]);
  });

  it('stops a macro that would drop a schema the build does not own: the warehouse refuses, the schema stays', async () => {
    const result = await operation('--macro=drop_victim');
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/must be owner of schema/);
    expect(await postgresRows(`${victim}.accounts`)).toEqual([{ id: 1 }]);
  });
});
