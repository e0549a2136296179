import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git } from '../../fixture-workspace/repo';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { relationsIn } from '../support/duckdb';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';
import { processesUsing } from '../support/kill';
import { interruptNx } from '../support/workspace';
import { readBuildRecord } from '../support/workflows';

const short = (sha: string) => sha.slice(0, 8);

describe('isolated-build on real dbt, git, Nx and DuckDB', () => {
  let ws: TestWorkspace;
  let warehouse: string;

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(() => ws.remove());

  it('infers one Nx project per dbt project, with a cached isolated-build target', async () => {
    const projects = await ws.nx(['show', 'projects', '--json']);
    expect(projects.code).toBe(0);
    expect(JSON.parse(projects.output.slice(projects.output.indexOf('[')))).toEqual(
      expect.arrayContaining(['analytics', 'shared_macros']),
    );

    const shown = await ws.nx(['show', 'project', 'analytics', '--json']);
    const project = JSON.parse(shown.output.slice(shown.output.indexOf('{')));
    expect(project.root).toBe('analytics');
    expect(project.metadata.technologies).toEqual(['dbt']);
    expect(project.targets['isolated-build']).toMatchObject({
      executor: 'nx-dbt-isolated:isolated-build',
      cache: true,
      outputs: ['{workspaceRoot}/.dot/cache/{projectName}'],
      metadata: { technologies: ['dbt'] },
    });
    expect(project.targets['isolated-build'].metadata.description).toContain('<schema>_<short_hash>');

    // The local package has no profile: dbt cannot build it alone, so it gets no build target.
    const shownPackage = await ws.nx(['show', 'project', 'shared_macros', '--json']);
    expect(JSON.parse(shownPackage.output.slice(shownPackage.output.indexOf('{'))).targets).toEqual({});
  });

  it("takes another project name from a project.json beside dbt_project.yml, Nx's usual override", async () => {
    const projectJson = join(ws.dir, 'analytics', 'project.json');
    writeFileSync(projectJson, JSON.stringify({ name: 'dbt-analytics' }));
    try {
      const projects = await ws.nx(['show', 'projects', '--json']);
      expect(JSON.parse(projects.output.slice(projects.output.indexOf('['))).sort()).toEqual([
        'dbt-analytics',
        'shared_macros',
      ]);
    } finally {
      rmSync(projectJson);
    }
  });

  it('builds main and an older tag into two schemas, each holding what its commit computes', async () => {
    const before = ws.gitState();

    const main = await ws.nx(['run', 'analytics:isolated-build', '--ref=main']);
    expect(main.code).toBe(0);
    expect(main.output).toContain(`analytics_${short(ws.main)}`);
    const tag = await ws.nx(['run', 'analytics:isolated-build', '--ref=v1.0']);
    expect(tag.code).toBe(0);

    for (const commit of [ws.main, ws.v1]) {
      expect(relationsIn(warehouse, `analytics_${short(commit)}`)).toEqual(
        ['countries', 'customer_averages', 'customers', 'orders', 'stg_customers', 'stg_orders', 'stg_payments']
          .map((name) => `analytics_${short(commit)}.${name}`)
          .concat(
            [`_finance.daily_revenue`, `_finance.payments_by_method`].map(
              (name) => `analytics_${short(commit)}${name}`,
            ),
            ['raw_customers', 'raw_orders', 'raw_payments'].map((name) => `analytics_${short(commit)}_raw.${name}`),
          )
          .sort(),
      );
    }
    const count = (commit: string, relation: string) =>
      queryDuckDb<{ n: number }>(warehouse, `select count(*) as n from analytics_${short(commit)}.${relation}`)[0].n;
    // v1.0 counts returned orders; main does not.
    expect(count(ws.v1, 'stg_orders')).toBe(10);
    expect(count(ws.main, 'stg_orders')).toBe(8);
    expect(count(ws.main, 'orders')).toBe(8);
    // Each build records its nodes' fingerprints: what v1.0 and main share are the nodes neither
    // the changed stg_orders, payments_by_method and countries nor their upstream reach.
    const fingerprints = (commit: string) => readBuildRecord(ws.dir, commit).fingerprints as Record<string, string>;
    const [older, newer] = [fingerprints(ws.v1), fingerprints(ws.main)];
    expect(Object.keys(newer)).toEqual(expect.arrayContaining(['model.analytics.orders', 'seed.analytics.raw_orders']));
    expect(
      Object.keys(newer)
        .filter((id) => !id.startsWith('test.') && older[id] === newer[id])
        .sort(),
    ).toEqual([
      'model.analytics.stg_customers',
      'model.analytics.stg_payments',
      'seed.analytics.raw_customers',
      'seed.analytics.raw_orders',
      'seed.analytics.raw_payments',
    ]);
    const columns = (commit: string) =>
      queryDuckDb<{ column_name: string }>(
        warehouse,
        `select column_name from information_schema.columns
         where table_schema = 'analytics_${short(commit)}_finance' and table_name = 'payments_by_method' order by ordinal_position`,
      ).map((row) => row.column_name);
    expect(columns(ws.v1)).toEqual(['method', 'payment_count', 'amount']);
    expect(columns(ws.main)).toEqual(['method', 'payment_count', 'amount', 'average_amount']);
    const countryColumns = queryDuckDb<{ column_name: string }>(
      warehouse,
      `select column_name from information_schema.columns
       where table_schema = 'analytics_${short(ws.main)}' and table_name = 'countries' order by ordinal_position`,
    ).map((row) => row.column_name);
    expect(countryColumns).toEqual(['country', 'customer_count', 'lifetime_value', 'average_lifetime_value']);
    const voucherAverage = queryDuckDb<{ average_amount: number }>(
      warehouse,
      `select average_amount from analytics_${short(ws.main)}_finance.payments_by_method where method = 'voucher'`,
    );
    expect(voucherAverage).toEqual([{ average_amount: 13.33 }]);

    // Artifacts and the record live per commit, per project, per target.
    const buildDir = join(ws.dir, '.dot', short(ws.main), 'analytics', 'dev');
    expect(existsSync(join(buildDir, 'target', 'manifest.json'))).toBe(true);
    expect(existsSync(join(buildDir, 'target', 'run_results.json'))).toBe(true);
    const record = JSON.parse(readFileSync(join(buildDir, 'build.json'), 'utf8'));
    expect(record).toMatchObject({
      commit: ws.main,
      ref: 'main',
      status: 'succeeded',
      schema: `analytics_${short(ws.main)}`,
    });
    expect(readFileSync(join(ws.dir, '.dot', short(ws.main), 'checkout.json'), 'utf8')).toContain(ws.main);

    // Nothing the user has was touched, .dot is invisible to git, and Nx still sees two projects.
    expect(ws.gitState()).toEqual(before);
    expect(git(ws.dir, 'status', '--porcelain', '--ignored=no')).toBe('');
    const projects = await ws.nx(['show', 'projects', '--json']);
    expect(projects.code).toBe(0);
    expect(JSON.parse(projects.output.slice(projects.output.indexOf('['))).sort()).toEqual([
      'analytics',
      'shared_macros',
    ]);
  });

  it('builds what is committed, not what is edited in the working tree', async () => {
    const stgOrders = join(ws.dir, 'analytics', 'models', 'staging', 'stg_orders.sql');
    const committed = readFileSync(stgOrders, 'utf8');
    writeFileSync(stgOrders, committed.replace("where status <> 'returned'", 'where false'));
    const before = ws.gitState();

    const head = await ws.nx(['run', 'analytics:isolated-build', '--select=stg_orders']);
    expect(head.code).toBe(0);
    expect(
      queryDuckDb<{ n: number }>(warehouse, `select count(*) as n from analytics_${short(ws.main)}.stg_orders`)[0].n,
    ).toBe(8);
    expect(ws.gitState()).toEqual(before);
    expect(readFileSync(stgOrders, 'utf8')).toContain('where false');
    writeFileSync(stgOrders, committed);
  });

  it('builds another dbt target, its env_var DuckDB path rendered into the file dbt opens', async () => {
    const ciFile = join(ws.dir, 'ci-warehouse.duckdb');
    const result = await ws.nx(['run', 'analytics:isolated-build', `--ref=${ws.featureVip}`, '--target=ci'], {
      ANALYTICS_CI_DUCKDB: ciFile,
    });
    expect(result.code).toBe(0);
    const schema = `analytics_ci_${short(ws.featureVip)}`;
    expect(relationsIn(ciFile, schema)).toContain(`${schema}.vip_customers`);
    expect(queryDuckDb(ciFile, `select customer_id from ${schema}.vip_customers order by 1`)).toEqual([
      { customer_id: 1 },
      { customer_id: 3 },
      { customer_id: 5 },
    ]);
    const profile = readFileSync(
      join(ws.dir, '.dot', short(ws.featureVip), 'analytics', 'ci', 'profiles', 'profiles.yml'),
      'utf8',
    );
    // The writer lock and the +database check must name the file dbt opens (issue 14, 1.3).
    expect(profile).not.toContain('ANALYTICS_CI_DUCKDB');
    expect(profile).toContain(`path: "${ciFile}"`);
    const record = JSON.parse(
      readFileSync(join(ws.dir, '.dot', short(ws.featureVip), 'analytics', 'ci', 'build.json'), 'utf8'),
    );
    expect(record.warehouse).toEqual({ type: 'duckdb', location: ciFile });
    expect(result.output).toContain(ciFile);
  });

  it('builds against a dbt target chosen as an Nx configuration, one per target of the profile', async () => {
    const shown = await ws.nx(['show', 'project', 'analytics', '--json']);
    const targets = JSON.parse(shown.output.slice(shown.output.indexOf('{'))).targets;
    for (const name of ['isolated-build', 'clean', 'diff', 'promote', 'dbt', 'docs']) {
      expect(targets[name].configurations).toEqual({
        dev: { target: 'dev' },
        ci: { target: 'ci' },
        pg: { target: 'pg' },
      });
    }
    const ciFile = join(ws.dir, 'ci-configuration.duckdb');
    const result = await ws.nx(['run', 'analytics:isolated-build:ci', `--ref=${ws.v1}`], {
      ANALYTICS_CI_DUCKDB: ciFile,
    });
    expect(result.code).toBe(0);
    const schema = `analytics_ci_${short(ws.v1)}`;
    expect(relationsIn(ciFile, schema)).toContain(`${schema}.orders`);
    const record = JSON.parse(
      readFileSync(join(ws.dir, '.dot', short(ws.v1), 'analytics', 'ci', 'build.json'), 'utf8'),
    );
    expect(record).toMatchObject({ target: 'ci', status: 'succeeded' });
  });

  it('builds two commits at once into one DuckDB file', async () => {
    const [first, second] = await Promise.all([
      ws.nx(['run', 'analytics:isolated-build', `--ref=${ws.excludeReturned}`]),
      ws.nx(['run', 'analytics:isolated-build', '--ref=feature/vip']),
    ]);
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(relationsIn(warehouse, `analytics_${short(ws.excludeReturned)}`)).toContain(
      `analytics_${short(ws.excludeReturned)}.customers`,
    );
    expect(relationsIn(warehouse, `analytics_${short(ws.featureVip)}`)).toContain(
      `analytics_${short(ws.featureVip)}.vip_customers`,
    );
  });

  it('builds every dbt project with nx run-many', async () => {
    const result = await ws.nx(['run-many', '-t', 'isolated-build', `--ref=${ws.v1.slice(0, 10)}`]);
    expect(result.code).toBe(0);
    expect(result.output).toContain('analytics:isolated-build');
    expect(queryDuckDb<{ n: number }>(warehouse, `select count(*) as n from analytics_${short(ws.v1)}.orders`)).toEqual(
      [{ n: 10 }],
    );
  });

  it('reuses a valid checkout and recreates a broken one', async () => {
    const worktree = join(ws.dir, '.dot', short(ws.v1), 'worktree');
    rmSync(join(worktree, 'analytics', 'models'), { recursive: true });
    const rebuilt = await ws.nx(['run', 'analytics:isolated-build', '--ref=v1.0', '--select=stg_orders']);
    expect(rebuilt.code).toBe(0);
    expect(existsSync(join(worktree, 'analytics', 'models', 'staging', 'stg_orders.sql'))).toBe(true);
    expect(git(worktree, 'status', '--porcelain', '--untracked-files=no')).toBe('');
    const worktrees = git(ws.dir, 'worktree', 'list', '--porcelain')
      .split('\n')
      .filter((line) => line.startsWith('worktree '));
    expect(worktrees).toHaveLength(1 + new Set([ws.main, ws.v1, ws.excludeReturned, ws.featureVip]).size);
  });

  it('refuses a ref that is not a commit, or looks like an option, with one clear line', async () => {
    const before = ws.gitState();
    const unknown = await ws.nx(['run', 'analytics:isolated-build', '--ref=no-such-branch']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.output).toMatch(/ref 'no-such-branch' does not name a commit/);

    const option = await ws.nx(['run', 'analytics:isolated-build', '--ref=--output=/tmp/pwned']);
    expect(option.code).not.toBe(0);
    expect(option.output).toMatch(/ref '--output=\/tmp\/pwned' is not a valid git ref/);
    expect(existsSync('/tmp/pwned')).toBe(false);
    expect(ws.gitState()).toEqual(before);
  });

  it('says how to install dbt when it finds none', async () => {
    const result = await ws.nx(['run', 'analytics:isolated-build'], { PATH: process.env.PATH });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/dbt was not found in .*\.venv\/bin nor on PATH: install it with/);
  });

  it('takes --target from the command line with the Nx daemon on too', async () => {
    const ciFile = join(ws.dir, 'ci-daemon.duckdb');
    try {
      const result = await ws.nx(['run', 'analytics:isolated-build', '--ref=v1.0', '--target=ci'], {
        NX_DAEMON: 'true',
        ANALYTICS_CI_DUCKDB: ciFile,
      });
      expect(result.code).toBe(0);
      expect(relationsIn(ciFile, `analytics_ci_${short(ws.v1)}`)).toContain(`analytics_ci_${short(ws.v1)}.orders`);
    } finally {
      await ws.nx(['daemon', '--stop']);
    }
  });

  it("fails with dbt's own error when the commit's SQL is broken, and records the failure", async () => {
    git(ws.dir, 'checkout', '-q', '-b', 'broken');
    writeFileSync(join(ws.dir, 'analytics', 'models', 'marts', 'broken.sql'), 'select * from no_such_table\n');
    git(ws.dir, 'add', '-A');
    git(ws.dir, 'commit', '-q', '-m', 'Broken model');
    const broken = git(ws.dir, 'rev-parse', 'HEAD');
    git(ws.dir, 'checkout', '-q', 'main');

    const result = await ws.nx(['run', 'analytics:isolated-build', '--ref=broken']);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/no_such_table/i);
    expect(result.output).toContain('Isolated build failed');
    const record = JSON.parse(
      readFileSync(join(ws.dir, '.dot', short(broken), 'analytics', 'dev', 'build.json'), 'utf8'),
    );
    expect(record.status).toBe('failed');
    expect(record.results.failures.map((failure: { node: string }) => failure.node)).toContain(
      'model.analytics.broken',
    );
  });

  it('stops dbt on Ctrl-C and leaves no lock behind', async () => {
    // v1.0 was built before: skip Nx's cache so that dbt really runs.
    const interrupted = await interruptNx(
      ws.dir,
      ['run', 'analytics:isolated-build', '--ref=v1.0', '--skip-nx-cache'],
      /Running with dbt/,
    );
    expect(interrupted.code).not.toBe(0);
    expect(processesUsing(join(ws.dir, '.dot'))).toEqual([]);
    expect(readdirSync(join(ws.dir, '.dot', 'locks')).filter((name) => name.endsWith('.lock'))).toEqual([]);
    const record = JSON.parse(
      readFileSync(join(ws.dir, '.dot', short(ws.v1), 'analytics', 'dev', 'build.json'), 'utf8'),
    );
    expect(record.status).toBe('interrupted');

    const again = await ws.nx(['run', 'analytics:isolated-build', '--ref=v1.0', '--skip-nx-cache']);
    expect(again.code).toBe(0);
    expect(again.output).toContain('Running with dbt');
    expect(again.output).not.toContain('waiting for');
  });
});
