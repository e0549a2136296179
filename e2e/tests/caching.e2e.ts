import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git } from '../../fixture-workspace/repo';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { NX_VERSION } from '../../fixture-workspace/paths';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);
const HIT = /Nx read the output from the cache/;
const hits = (result: NxResult) => HIT.test(result.output);
const NX_MAJOR = Number(NX_VERSION.split('.')[0]);

describe('Nx caches isolated builds keyed on the commit', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  const build = (...args: string[]) => ws.nx(['run', 'analytics:isolated-build', ...args]);

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(() => ws.remove());

  it('serves the second build of a ref from the cache and puts its artifacts back where the build keeps them', async () => {
    const buildDir = join(ws.dir, '.dot', short(ws.main), 'analytics', 'dev');
    const startedAt = () => JSON.parse(readFileSync(join(buildDir, 'build.json'), 'utf8')).startedAt;
    const first = await build('--ref=main');
    expect(first.code).toBe(0);
    expect(hits(first)).toBe(false);
    const firstStart = startedAt();

    const second = await build('--ref=main');
    expect(second.code).toBe(0);
    expect(hits(second)).toBe(true);
    expect(startedAt()).toBe(firstStart);
    rmSync(buildDir, { recursive: true });
    const third = await build('--ref=main');
    expect(hits(third)).toBe(true);
    const manifest = JSON.parse(readFileSync(join(buildDir, 'target', 'manifest.json'), 'utf8'));
    expect(manifest.nodes['model.analytics.orders'].schema).toBe(`analytics_${short(ws.main)}`);
    expect(existsSync(join(buildDir, 'target', 'run_results.json'))).toBe(true);
    const record = JSON.parse(readFileSync(join(buildDir, 'build.json'), 'utf8'));
    expect(record).toMatchObject({ commit: ws.main, status: 'succeeded' });
    expect(record.restoredFromCacheAt).toEqual(expect.any(String));
  });

  it('keeps a build of main cached through commits on other branches, and on Nx 23 through edits in the working tree', async () => {
    const stgOrders = join(ws.dir, 'analytics', 'models', 'staging', 'stg_orders.sql');
    const committed = readFileSync(stgOrders, 'utf8');
    writeFileSync(stgOrders, `${committed}\n-- an edit that is not committed\n`);
    // Nx 24 selects affected tasks by their file inputs, so there the build's inputs hold the
    // project's files and an uncommitted edit costs a rebuild (docs/caching.md, Nx 24 section).
    expect(hits(await build('--ref=main'))).toBe(NX_MAJOR < 24);
    writeFileSync(stgOrders, committed);

    git(ws.dir, 'checkout', '-q', 'feature/vip');
    writeFileSync(join(ws.dir, 'analytics', 'models', 'marts', 'vip_note.sql'), "select 'vip' as note\n");
    git(ws.dir, 'add', '-A');
    git(ws.dir, 'commit', '-q', '-m', 'Another commit on another branch');
    git(ws.dir, 'checkout', '-q', 'main');
    expect(hits(await build('--ref=main'))).toBe(true);
  });

  it('builds a new commit of main for real: the cache entry is the commit, not the branch name', async () => {
    writeFileSync(
      join(ws.dir, 'analytics', 'models', 'marts', 'big_orders.sql'),
      "select * from {{ ref('orders') }} where amount >= 40\n",
    );
    git(ws.dir, 'add', '-A');
    git(ws.dir, 'commit', '-q', '-m', 'Big orders');
    const newMain = git(ws.dir, 'rev-parse', 'HEAD');

    const result = await build('--ref=main');
    expect(result.code).toBe(0);
    expect(hits(result)).toBe(false);
    expect(queryDuckDb(warehouse, `select order_id from analytics_${short(newMain)}.big_orders order by 1`)).toEqual([
      { order_id: 2 },
      { order_id: 4 },
      { order_id: 8 },
    ]);
    expect(hits(await build('--ref=main'))).toBe(true);
  });

  it('misses when an option, the dbt target or where the target points changes, and only then', async () => {
    expect(hits(await build('--ref=main', '--select=stg_orders+'))).toBe(false);
    expect(hits(await build('--ref=main', '--select=stg_orders+'))).toBe(true);

    const ciFile = join(ws.dir, 'ci.duckdb');
    expect(
      hits(
        await ws.nx(['run', 'analytics:isolated-build', '--ref=main', '--target=ci'], { ANALYTICS_CI_DUCKDB: ciFile }),
      ),
    ).toBe(false);
    expect(
      hits(
        await ws.nx(['run', 'analytics:isolated-build', '--ref=main', '--target=ci'], { ANALYTICS_CI_DUCKDB: ciFile }),
      ),
    ).toBe(true);

    // Reordered keys, a comment and a password do not change where the build lands.
    const profiles = join(ws.dir, 'analytics', 'profiles.yml');
    const original = readFileSync(profiles, 'utf8');
    writeFileSync(
      profiles,
      original
        .replace(
          '      path: warehouse.duckdb\n      schema: analytics\n',
          '      schema: analytics # renamed per commit\n      path: warehouse.duckdb\n',
        )
        .replace(
          '      threads: 4\n',
          "      threads: 4\n      password: \"{{ env_var('ANALYTICS_PASSWORD', 'secret') }}\"\n",
        ),
    );
    expect(hits(await build('--ref=main'))).toBe(true);
    const otherPassword = await ws.nx(['run', 'analytics:isolated-build', '--ref=main'], { ANALYTICS_PASSWORD: 'x' });
    expect(hits(otherPassword)).toBe(true);

    // Another base schema does.
    writeFileSync(profiles, original.replace('      schema: analytics\n', '      schema: analytics_v2\n'));
    const renamed = await build('--ref=main');
    expect(hits(renamed)).toBe(false);
    expect(renamed.output).toContain(`analytics_v2_${short(git(ws.dir, 'rev-parse', 'main'))}`);
    writeFileSync(profiles, original);
  });

  it.each([
    ['off', 'false'],
    ['on', 'true'],
  ])('caches nx run-many and nx affected with the daemon %s', async (_mode, daemon) => {
    const env = { NX_DAEMON: daemon };
    try {
      const runMany = ['run-many', '-t', 'isolated-build', '--ref=main'];
      expect((await ws.nx(runMany, env)).code).toBe(0);
      const many = await ws.nx(runMany, env);
      expect(many.code).toBe(0);
      expect(hits(many)).toBe(true);

      const affectedArgs = ['affected', '-t', 'isolated-build', '--base=main~1', '--head=main'];
      const affected = await ws.nx(affectedArgs, env);
      expect(affected.code).toBe(0);
      expect(affected.output).toContain('analytics:isolated-build');
      expect(hits(await ws.nx(affectedArgs, env))).toBe(true);
    } finally {
      if (daemon === 'true') await ws.nx(['daemon', '--stop']);
    }
  });

  it('never claims relations of a DuckDB file that is gone: a new file is a new warehouse', async () => {
    rmSync(warehouse);
    const result = await build('--ref=main');
    expect(hits(result)).toBe(false);
    const main = git(ws.dir, 'rev-parse', 'main');
    expect(queryDuckDb(warehouse, `select count(*) as n from analytics_${short(main)}.orders`)).toEqual([{ n: 8 }]);
  });
});
