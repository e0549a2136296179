import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureRelations } from '../support/fixture-relations';
import { git } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import {
  cloneWorkspace,
  createTestWorkspace,
  runNx,
  type NxResult,
  type TestWorkspace,
} from '../../fixture-workspace/workspace';

const CLAIMS_TABLE = 'nx_dbt_isolated_claims';
const WAITED =
  /waiting for another workspace's build or clean of analytics at \w+ into \w+ \(127\.0\.0\.1:5432\/test\) to finish/;
const HIT = /nx run analytics:isolated-build --ref=\w+\s+\[local cache\]/;

/**
 * Two clones of one repository on one machine, building into one PostgreSQL database. Nx 23 keeps
 * one local cache per user and repository (~/.nx/<repository id>/: the entries and the database
 * indexing them), which both clones use unless NX_CACHE_DIRECTORY gives a workspace a cache and
 * index of its own. Each test has base schemas of its own, so its builds have keys of their own.
 */
describe('one PostgreSQL warehouse, two clones of one repository', () => {
  let a: TestWorkspace;
  let bDir: string;
  /** Caches of one workspace each, for the test that needs a cache entry only clone A has. */
  let cacheRoot: string;
  const schemaPrefix = `nxdbt_clones_${randomBytes(4).toString('hex')}`;
  let run = 0;

  beforeAll(() => {
    a = createTestWorkspace();
    bDir = cloneWorkspace(a.dir);
    cacheRoot = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-e2e-clones-cache-')));
  });
  afterAll(async () => {
    await dropSchemasStartingWith(schemaPrefix);
    a.remove();
    rmSync(bDir, { recursive: true, force: true });
    rmSync(cacheRoot, { recursive: true, force: true });
  });

  /** A base schema of the test's own, and nx in a clone with the shared cache or `cache`. */
  function scenario() {
    const base = `${schemaPrefix}_${++run}`;
    const caches = { a: join(cacheRoot, `${run}-a`), b: join(cacheRoot, `${run}-b`) };
    const nx = (dir: string, args: string[], cache?: string) =>
      runNx(dir, args, { ANALYTICS_PG_SCHEMA: base, ...(cache === undefined ? {} : { NX_CACHE_DIRECTORY: cache }) });
    return { base, caches, nx };
  }
  const build = (commit: string, ...more: string[]) => [
    'run',
    'analytics:isolated-build',
    `--ref=${commit.slice(0, 12)}`,
    '--target=pg',
    ...more,
  ];
  const clean = (commit: string) => ['run', 'analytics:clean', `--ref=${commit.slice(0, 12)}`, '--target=pg'];
  const short = (commit: string) => commit.slice(0, 8);
  const recordIn = (dir: string, commit: string) =>
    JSON.parse(readFileSync(join(dir, '.dot', short(commit), 'analytics', 'pg', 'build.json'), 'utf8'));
  const workspaceIdOf = (dir: string) => JSON.parse(readFileSync(join(dir, '.dot', 'workspace.json'), 'utf8')).id;
  const buildSchemas = (schema: string) => [schema, `${schema}_finance`, `${schema}_raw`];
  /** The build's relations as PostgreSQL holds them, the claims table left out. */
  const relations = (schema: string) =>
    withPostgres(async (client) => {
      const result = await client.query<{ relation: string }>(
        `select table_schema || '.' || table_name as relation from information_schema.tables
         where starts_with(table_schema, $1) and table_name <> $2`,
        [schema, CLAIMS_TABLE],
      );
      return result.rows.map((row) => row.relation).sort();
    });
  const claimsOn = (schema: string) =>
    withPostgres(async (client) => {
      const result = await client.query<{ workspace_id: string; how: string }>(
        `select workspace_id, how from "${schema}".${CLAIMS_TABLE} order by how, workspace_id`,
      );
      return result.rows;
    });
  const ordersIn = (schema: string) =>
    withPostgres(async (client) =>
      Number((await client.query(`select count(*) as n from "${schema}".stg_orders`)).rows[0].n),
    );

  let slowModelCommit: string | undefined;
  /**
   * A commit with a model that takes 30 s, in both clones: whichever build takes the lock first
   * holds it while the other, started at the same moment, has long finished its parse.
   */
  function slowModel(): string {
    if (slowModelCommit) return slowModelCommit;
    git(a.dir, 'checkout', '-q', '-b', 'slow-model');
    writeFileSync(
      join(a.dir, 'analytics', 'models', 'slow_model.sql'),
      "{{ config(materialized='table') }}\nselect 1 as waited from (select pg_sleep(30)) as slept\n",
    );
    git(a.dir, 'add', '-A');
    git(a.dir, 'commit', '-q', '-m', 'A slow model');
    slowModelCommit = git(a.dir, 'rev-parse', 'HEAD');
    git(a.dir, 'checkout', '-q', 'main');
    git(bDir, 'fetch', '-q', 'origin', 'slow-model:slow-model');
    return slowModelCommit;
  }

  it('serialises two clones building one commit at one moment, through the warehouse: both succeed, one waits', async () => {
    const { base, nx } = scenario();
    const commit = slowModel();
    const schema = `${base}_${short(commit)}`;

    const runs = await Promise.all([
      nx(a.dir, build(commit, '--skip-nx-cache')),
      nx(bDir, build(commit, '--skip-nx-cache')),
    ]);
    runs.forEach((result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED));
    expect(runs.filter((result) => WAITED.test(result.output))).toHaveLength(1);
    expect(await schemasStartingWith(schema)).toEqual(buildSchemas(schema));
    expect(await relations(schema)).toEqual(fixtureRelations(schema, ['slow_model']));
    expect(await ordersIn(schema)).toBe(8);
    expect([recordIn(a.dir, commit).status, recordIn(bDir, commit).status]).toEqual(['succeeded', 'succeeded']);
    expect((await claimsOn(schema)).map((claim) => claim.workspace_id).sort()).toEqual(
      [workspaceIdOf(a.dir), workspaceIdOf(bDir)].sort(),
    );
  });

  it('serialises two strictIsolation builds of one commit from two clones: the first to end never ends the role of the other', async () => {
    const { base, nx } = scenario();
    const commit = slowModel();
    const schema = `${base}_${short(commit)}`;

    const runs = await Promise.all([
      nx(a.dir, build(commit, '--skip-nx-cache', '--strictIsolation')),
      nx(bDir, build(commit, '--skip-nx-cache', '--strictIsolation')),
    ]);
    runs.forEach((result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED));
    expect(runs.filter((result) => WAITED.test(result.output))).toHaveLength(1);
    runs.forEach((result) => expect(result.output).toMatch(/strictIsolation: role \w+ dropped/));
    expect(await relations(schema)).toEqual(fixtureRelations(schema, ['slow_model']));
    expect(await ordersIn(schema)).toBe(8);
    const roles = await withPostgres(async (client) => {
      const result = await client.query(
        `select rolname from pg_roles where rolname like 'nx_dbt_isolated_%' and rolname like $1`,
        [`%${schema}%`],
      );
      return result.rows;
    });
    expect(roles).toEqual([]);
  });

  it('keeps a schema another clone restored from the shared cache when one cleans, and drops it with the last clean', async () => {
    const { base, nx } = scenario();
    const commit = a.main;
    const schema = `${base}_${short(commit)}`;
    expect(outcome(await nx(a.dir, build(commit)))).toEqual(SUCCEEDED);

    const restored = await nx(bDir, build(commit));
    expect(outcome(restored)).toEqual(SUCCEEDED);
    expect(restored.output).toMatch(HIT);

    const cleanedA = await nx(a.dir, clean(commit));
    expect(outcome(cleanedA)).toEqual(SUCCEEDED);
    expect(await schemasStartingWith(schema)).toEqual(buildSchemas(schema));
    expect(cleanedA.output).toContain(`kept ${buildSchemas(schema).join(', ')}: still claimed by another workspace:`);
    expect(cleanedA.output).toContain(`:${bDir} (restored `);
    expect(recordIn(bDir, commit)).toMatchObject({ builtBy: workspaceIdOf(a.dir), claimedAt: expect.any(String) });

    const hitAgain = await nx(bDir, build(commit));
    expect(outcome(hitAgain)).toEqual(SUCCEEDED);
    expect(hitAgain.output).toMatch(HIT);
    expect(await relations(schema)).toEqual(fixtureRelations(schema));
    expect(await ordersIn(schema)).toBe(8);

    const cleanedB = await nx(bDir, clean(commit));
    expect(outcome(cleanedB)).toEqual(SUCCEEDED);
    expect(cleanedB.output).toContain(`dropped ${buildSchemas(schema).join(', ')}`);
    expect(await schemasStartingWith(schema)).toEqual([]);
  });

  it('refuses a hit whose schema another clone dropped before anyone claimed it, and builds the commit next time', async () => {
    const { base, nx } = scenario();
    const commit = a.averagePayment;
    const schema = `${base}_${short(commit)}`;
    expect(outcome(await nx(a.dir, build(commit)))).toEqual(SUCCEEDED);
    expect(outcome(await nx(a.dir, clean(commit)))).toEqual(SUCCEEDED);
    expect(await schemasStartingWith(schema)).toEqual([]);

    const stale = await nx(bDir, build(commit));
    expect(stale.output).toMatch(HIT);
    expect(stale.code).not.toBe(0);
    expect(stale.output).toContain(
      `Nx restored the build of analytics at ${commit.slice(0, 12)} from its cache, but schema ${schema} is gone from the warehouse`,
    );
    const rebuilt = await nx(bDir, build(commit));
    expect(outcome(rebuilt)).toEqual(SUCCEEDED);
    expect(rebuilt.output).not.toMatch(HIT);
    expect(await relations(schema)).toEqual(fixtureRelations(schema));
    expect(recordIn(bDir, commit).builtBy).toBe(workspaceIdOf(bDir));
  });

  it("keeps the record of a build this clone made when a cache entry of another clone's build is restored", async () => {
    const { base, caches, nx } = scenario();
    const commit = a.excludeReturned;
    const schema = `${base}_${short(commit)}`;
    // Each clone with a cache of its own, as on two machines; B's index then knows the build's hash.
    expect(outcome(await nx(bDir, build(commit), caches.b))).toEqual(SUCCEEDED);
    // A builds the same commit later, then cleans: B still claims the schema.
    expect(outcome(await nx(a.dir, build(commit), caches.a))).toEqual(SUCCEEDED);
    expect(outcome(await nx(a.dir, clean(commit), caches.a))).toEqual(SUCCEEDED);
    expect(await schemasStartingWith(schema)).toEqual(buildSchemas(schema));

    // B reads A's cache folder: the hit restores A's later build over B's own.
    const restored = await nx(bDir, build(commit), caches.a);
    expect(outcome(restored)).toEqual(SUCCEEDED);
    expect(restored.output).toMatch(HIT);
    expect(recordIn(bDir, commit)).toMatchObject({ builtBy: workspaceIdOf(bDir) });
    expect(recordIn(bDir, commit).restoredFromCacheAt).toBeUndefined();

    const cleaned = await nx(bDir, clean(commit));
    expect(outcome(cleaned)).toEqual(SUCCEEDED);
    expect(cleaned.output).toContain(`dropped ${buildSchemas(schema).join(', ')}`);
    expect(await schemasStartingWith(schema)).toEqual([]);
  });
});
