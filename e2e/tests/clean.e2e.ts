import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { executeDuckDb, schemasAndRelationsIn } from '../support/duckdb';
import { queryDuckDb, queryDuckDbAll } from '../../fixture-workspace/duckdb';
import { git } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);
const HIT = /Nx read the output from the cache/;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The schemas a build of the fixture lands in: the base, marts/finance (`+schema: finance`) and the seeds (`raw`). */
const buildSchemas = (base: string, commit: string) =>
  [`${base}_${short(commit)}`, `${base}_${short(commit)}_finance`, `${base}_${short(commit)}_raw`].sort();

/**
 * The action clean's plan gives a commit's build: the first `clean` or `keep` on the first line
 * that names the commit by its short id standing alone (not inside a schema name or a full sha).
 */
function actionOf(result: NxResult, commit: string): string | undefined {
  const id = new RegExp(`(?<![0-9A-Za-z_])${short(commit)}(?![0-9A-Za-z_])`);
  const row = result.output.split('\n').find((line) => id.test(line) && /\b(clean|keep)\b/i.test(line));
  return row?.match(/\b(clean|keep)\b/i)?.[1].toLowerCase();
}

/** nx exited 0; when it did not, the failure shows the end of its output. */
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

/** The paths of the worktrees git has registered for the repository in `dir`. */
function worktrees(dir: string): string[] {
  return git(dir, 'worktree', 'list', '--porcelain')
    .split('\n')
    .filter((line) => line.startsWith('worktree '))
    .map((line) => line.slice('worktree '.length))
    .sort();
}

/**
 * Everything under `.dot` but the locks: folders, files, and the content of each build record.
 * A checkout is listed by its folder only.
 */
function dotTree(workspaceDir: string): string[] {
  const entries: string[] = [];
  const walk = (path: string, relative: string) => {
    for (const name of readdirSync(path).sort()) {
      const entry = relative ? `${relative}/${name}` : name;
      if (entry === 'locks') continue;
      const full = join(path, name);
      if (lstatSync(full).isDirectory()) {
        entries.push(`${entry}/`);
        if (name !== 'worktree') walk(full, entry);
      } else {
        entries.push(name === 'build.json' ? `${entry} ${readFileSync(full, 'utf8')}` : entry);
      }
    }
  };
  const root = join(workspaceDir, '.dot');
  if (existsSync(root)) walk(root, '');
  return entries;
}

/** Rewrites the times of a build's record so that it was last used `days` ago: how a test makes a build old. */
function age(workspaceDir: string, commit: string, days: number, dbtTarget = 'dev'): void {
  const file = join(workspaceDir, '.dot', short(commit), 'analytics', dbtTarget, 'build.json');
  const record = JSON.parse(readFileSync(file, 'utf8'));
  const started = Date.now() - days * DAY_MS;
  record.startedAt = new Date(started).toISOString();
  if (record.endedAt !== undefined) record.endedAt = new Date(started + 6_000).toISOString();
  if (record.restoredFromCacheAt !== undefined) record.restoredFromCacheAt = new Date(started + 7_000).toISOString();
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
}

describe('clean on a DuckDB warehouse (dbt target dev)', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  const build = (ref: string) => ws.nx(['run', 'analytics:isolated-build', `--ref=${ref}`]);
  const clean = (...args: string[]) => ws.nx(['run', 'analytics:clean', ...args]);
  /** The warehouse's schemas and relations (`schema.name`) under `analytics`, read in one go. */
  const warehouseNow = () => schemasAndRelationsIn(warehouse, 'analytics');
  /** The names in `names` that start with the prefix of `commit`'s build schemas. */
  const ofCommit = (names: string[], commit: string) =>
    names.filter((name) => name.startsWith(`analytics_${short(commit)}`));
  const schemasOf = (commit: string, now = warehouseNow()) => ofCommit(now.schemas, commit);
  const relationsOf = (commit: string, now = warehouseNow()) => ofCommit(now.relations, commit);
  const commitDir = (commit: string) => join(ws.dir, '.dot', short(commit));
  const worktreeOf = (commit: string) => join(commitDir(commit), 'worktree');
  /** What the warehouse, `.dot` and git's worktree list hold: a clean that changes nothing leaves it equal. */
  const state = () => ({
    ...warehouseNow(),
    dot: dotTree(ws.dir),
    worktrees: worktrees(ws.dir),
  });
  /** Runs a clean that must succeed and leave warehouse, `.dot` and worktrees exactly as they were. */
  const cleanChangingNothing = async (...args: string[]) => {
    const before = state();
    const result = await clean(...args);
    expectSuccess(result);
    expect(state()).toEqual(before);
    return result;
  };
  /** The builds of `commits` are still there: schemas, relations, `.dot/<id>` with its checkout, registered with git. */
  const expectBuilt = (...commits: string[]) => {
    const now = warehouseNow();
    for (const commit of commits) {
      expect(schemasOf(commit, now)).toEqual(expect.arrayContaining(buildSchemas('analytics', commit)));
      expect(relationsOf(commit, now)).toContain(`analytics_${short(commit)}.orders`);
      expect(existsSync(join(commitDir(commit), 'analytics', 'dev', 'build.json'))).toBe(true);
      expect(existsSync(join(worktreeOf(commit), 'analytics', 'dbt_project.yml'))).toBe(true);
      expect(worktrees(ws.dir)).toContain(worktreeOf(commit));
    }
  };
  /** The build of `commit` is gone: none of its schemas, no `.dot/<id>`, no worktree git knows of. */
  const expectCleaned = (commit: string) => {
    const schemas = schemasOf(commit);
    for (const schema of buildSchemas('analytics', commit)) expect(schemas).not.toContain(schema);
    expect(existsSync(commitDir(commit))).toBe(false);
    expect(worktrees(ws.dir)).not.toContain(worktreeOf(commit));
  };

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(() => ws.remove());

  it('--keep=1 cleans all but the most recently used unprotected build, never a protected one, and leaves look-alike schemas', async () => {
    // Oldest first: v1.0's commit, the two middle commits of main, main's tip.
    for (const commit of [ws.v1, ws.excludeReturned, ws.averagePayment, ws.main]) {
      const built = await build(commit);
      expectSuccess(built);
    }
    expectBuilt(ws.v1, ws.excludeReturned, ws.averagePayment, ws.main);
    // Schemas no build made, whose names start like a build's.
    const lookalikes = [`analytics_${short(ws.excludeReturned)}_lookalike`, `analytics_${short(ws.averagePayment)}x`];
    executeDuckDb(
      warehouse,
      ...lookalikes.flatMap((schema) => [`create schema ${schema}`, `create table ${schema}.kept as select 1 as one`]),
    );
    const gitBefore = ws.gitState();

    const dryRun = await cleanChangingNothing('--keep=1', '--dryRun');
    expect(dryRun.output).toMatch(/dry run/i);
    expect(actionOf(dryRun, ws.excludeReturned)).toBe('clean');
    // The newest unprotected build: main and v1.0, protected, take no place among the 1 kept.
    expect(actionOf(dryRun, ws.averagePayment)).toBe('keep');
    expect(actionOf(dryRun, ws.v1)).toBe('keep');
    expect(actionOf(dryRun, ws.main)).toBe('keep');
    // Under each row to clean, its schemas.
    for (const schema of buildSchemas('analytics', ws.excludeReturned)) expect(dryRun.output).toContain(schema);
    expect(dryRun.output).not.toMatch(/Cleaned [1-9]/);

    const cleaned = await clean('--keep=1');
    expectSuccess(cleaned);
    expect(cleaned.output).toMatch(/Cleaned 1 build/);
    expect(cleaned.output).not.toMatch(/dry run/i);
    expectCleaned(ws.excludeReturned);
    expectBuilt(ws.averagePayment, ws.v1, ws.main);
    const afterClean = warehouseNow();
    expect(schemasOf(ws.excludeReturned, afterClean)).toEqual([`analytics_${short(ws.excludeReturned)}_lookalike`]);
    expect(schemasOf(ws.averagePayment, afterClean)).toEqual(
      [...buildSchemas('analytics', ws.averagePayment), `analytics_${short(ws.averagePayment)}x`].sort(),
    );
    expect(
      queryDuckDbAll(
        warehouse,
        lookalikes.map((schema) => `select one from ${schema}.kept`),
      ),
    ).toEqual(lookalikes.map(() => [{ one: 1 }]));
    expect(schemasOf(ws.v1, afterClean)).toEqual(buildSchemas('analytics', ws.v1));
    expect(schemasOf(ws.main, afterClean)).toEqual(buildSchemas('analytics', ws.main));
    expect(worktrees(ws.dir)).toEqual(
      [ws.dir, worktreeOf(ws.v1), worktreeOf(ws.averagePayment), worktreeOf(ws.main)].sort(),
    );
    // The user's repository is untouched: branches, index, working tree, stash, HEAD.
    expect(ws.gitState()).toEqual(gitBefore);

    expect((await cleanChangingNothing('--keep=1')).output).toMatch(/Cleaned 0 build/);
  });

  it.each<[string, string[], RegExp]>([
    ['no selector', [], /\b(ref|keep|olderThan|unreachable|all)\b/],
    ['a duration with an unknown unit', ['--olderThan=7x'], /7x/],
    ['a ref that names no commit and no recorded build', ['--ref=nope'], /nope/],
    ['--ref with another selector', ['--ref=main', '--keep=1'], /\bref\b/],
    ['--all with another selector', ['--all', '--unreachable'], /\ball\b/],
    ['a negative --keep', ['--keep=-1'], /keep.*-1|-1.*keep/],
  ])('refuses %s with one nx-dbt-isolated line, removing nothing', async (_case, args, problem) => {
    const before = state();
    const result = await clean(...args);
    expect(result.code).not.toBe(0);
    const lines = result.output.split('\n').filter((line) => line.includes('nx-dbt-isolated:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(problem);
    expect(result.output).not.toMatch(/Cleaned \d/);
    expect(state()).toEqual(before);
  });

  it('--ref cleans that build only, and the next build of the commit runs dbt again', async () => {
    // The --keep clean dropped this commit's schemas: its next build must not be a cache hit.
    const rebuilt = await build(ws.excludeReturned);
    expectSuccess(rebuilt);
    expect(rebuilt.output).not.toMatch(HIT);
    expectBuilt(ws.excludeReturned);

    const cleaned = await clean(`--ref=${ws.excludeReturned}`);
    expectSuccess(cleaned);
    expect(cleaned.output).toMatch(/Cleaned 1 build/);
    expect(actionOf(cleaned, ws.excludeReturned)).toBe('clean');
    expectCleaned(ws.excludeReturned);
    expect(schemasOf(ws.excludeReturned)).toEqual([`analytics_${short(ws.excludeReturned)}_lookalike`]);
    expectBuilt(ws.v1, ws.main);

    const again = await build(ws.excludeReturned);
    expectSuccess(again);
    expect(again.output).not.toMatch(HIT);
    expect(again.output).toContain('Running with dbt');
    expectBuilt(ws.excludeReturned);
    // What the commit computes is back: returned orders are left out.
    expect(
      queryDuckDb(warehouse, `select count(*) as n from analytics_${short(ws.excludeReturned)}.stg_orders`),
    ).toEqual([{ n: 8 }]);
  });

  it('--olderThan cleans the builds last used before then, never protected ones; selectors combine as AND', async () => {
    expectSuccess(await build(ws.averagePayment));
    // Last used: averagePayment now, main minutes ago, excludeReturned 10 days ago, v1.0 11 days ago.
    age(ws.dir, ws.excludeReturned, 10);
    age(ws.dir, ws.v1, 11);

    // Old but reachable from main.
    expect((await cleanChangingNothing('--olderThan=7d', '--unreachable')).output).toMatch(/Cleaned 0 build/);
    // Old, but among the three most recently used.
    expect((await cleanChangingNothing('--olderThan=7d', '--keep=3')).output).toMatch(/Cleaned 0 build/);

    const dryRun = await cleanChangingNothing('--olderThan=7d', '--dryRun');
    expect(dryRun.output).toMatch(/dry run/i);
    expect(actionOf(dryRun, ws.excludeReturned)).toBe('clean');
    expect(actionOf(dryRun, ws.v1)).toBe('keep');
    expect(actionOf(dryRun, ws.averagePayment)).toBe('keep');
    expect(actionOf(dryRun, ws.main)).toBe('keep');

    const cleaned = await clean('--olderThan=7d');
    expectSuccess(cleaned);
    expect(cleaned.output).toMatch(/Cleaned 1 build/);
    expectCleaned(ws.excludeReturned);
    expectBuilt(ws.v1, ws.averagePayment, ws.main);
  });

  it('--unreachable cleans the build of a commit no branch, tag or HEAD reaches any more', async () => {
    git(ws.dir, 'checkout', '-q', '-b', 'scratch');
    writeFileSync(
      join(ws.dir, 'analytics', 'models', 'marts', 'big_orders.sql'),
      "select * from {{ ref('orders') }} where amount >= 40\n",
    );
    git(ws.dir, 'add', '-A');
    git(ws.dir, 'commit', '-q', '-m', 'Big orders, on a branch about to be deleted');
    const scratch = git(ws.dir, 'rev-parse', 'HEAD');
    git(ws.dir, 'checkout', '-q', 'main');

    expectSuccess(await build('scratch'));
    expect(relationsOf(scratch)).toContain(`analytics_${short(scratch)}.big_orders`);
    // Reachable still: nothing to clean.
    const reachable = await clean('--unreachable');
    expectSuccess(reachable);
    expect(reachable.output).toMatch(/Cleaned 0 build/);
    expectBuilt(scratch);

    git(ws.dir, 'branch', '-q', '-D', 'scratch');
    const cleaned = await clean('--unreachable');
    expectSuccess(cleaned);
    expect(actionOf(cleaned, scratch)).toBe('clean');
    expect(cleaned.output).toMatch(/Cleaned 1 build/);
    expect(schemasOf(scratch)).toEqual([]);
    expectCleaned(scratch);
    expectBuilt(ws.v1, ws.averagePayment, ws.main);
  });

  it('--schemas=false removes the files and the checkout only; a later clean drops the schemas', async () => {
    const target = join(commitDir(ws.averagePayment), 'analytics', 'dev', 'target');
    expect(existsSync(target)).toBe(true);

    const filesOnly = await clean(`--ref=${ws.averagePayment}`, '--schemas=false');
    expectSuccess(filesOnly);
    expect(filesOnly.output).toMatch(/Cleaned 1 build/);
    expect(existsSync(worktreeOf(ws.averagePayment))).toBe(false);
    expect(worktrees(ws.dir)).not.toContain(worktreeOf(ws.averagePayment));
    expect(existsSync(target)).toBe(false);
    const filesGone = warehouseNow();
    expect(schemasOf(ws.averagePayment, filesGone)).toEqual(
      [...buildSchemas('analytics', ws.averagePayment), `analytics_${short(ws.averagePayment)}x`].sort(),
    );
    expect(relationsOf(ws.averagePayment, filesGone)).toContain(`analytics_${short(ws.averagePayment)}.orders`);

    const schemas = await clean(`--ref=${ws.averagePayment}`);
    expectSuccess(schemas);
    expect(schemas.output).toMatch(/Cleaned 1 build/);
    for (const schema of buildSchemas('analytics', ws.averagePayment)) expect(schemas.output).toContain(schema);
    expect(schemasOf(ws.averagePayment)).toEqual([`analytics_${short(ws.averagePayment)}x`]);
    expectCleaned(ws.averagePayment);
    expectBuilt(ws.v1, ws.main);
  });

  it('--all cleans every build but the protected ones, which only --ref cleans', async () => {
    expectSuccess(await build('feature/vip'));
    expectBuilt(ws.featureVip);

    // Another dbt target: none of these builds.
    const otherTarget = await clean('--all', '--target=ci');
    expectSuccess(otherTarget);
    expect(otherTarget.output).toMatch(/Cleaned 0 build/);
    expectBuilt(ws.featureVip);

    // Protecting the branch keeps its build.
    const protectedVip = await cleanChangingNothing(
      '--all',
      '--protect=main',
      '--protect=refs/tags',
      '--protect=feature/vip',
      '--dryRun',
    );
    expect(actionOf(protectedVip, ws.featureVip)).toBe('keep');
    expect(actionOf(protectedVip, ws.main)).toBe('keep');
    expect(actionOf(protectedVip, ws.v1)).toBe('keep');

    const all = await clean('--all');
    expectSuccess(all);
    expect(actionOf(all, ws.featureVip)).toBe('clean');
    expect(actionOf(all, ws.main)).toBe('keep');
    expect(actionOf(all, ws.v1)).toBe('keep');
    expect(all.output).toMatch(/Cleaned 1 build/);
    expect(schemasOf(ws.featureVip)).toEqual([]);
    expectCleaned(ws.featureVip);
    expectBuilt(ws.main, ws.v1);

    const main = await clean('--ref=main');
    expectSuccess(main);
    expect(main.output).toMatch(/Cleaned 1 build/);
    expect(schemasOf(ws.main)).toEqual([]);
    expectCleaned(ws.main);
    expectBuilt(ws.v1);
    expect(worktrees(ws.dir)).toEqual([ws.dir, worktreeOf(ws.v1)].sort());
  });
});

describe('clean on a shared PostgreSQL warehouse (dbt target pg)', () => {
  const base = `nxdbt_clean_${randomBytes(4).toString('hex')}`;
  const env = { ANALYTICS_PG_SCHEMA: base };
  let ws: TestWorkspace;
  const worktreeOf = (commit: string) => join(ws.dir, '.dot', short(commit), 'worktree');

  beforeAll(() => {
    ws = createTestWorkspace();
  });
  afterAll(async () => {
    await dropSchemasStartingWith(base);
    ws.remove();
  });

  it("--keep=1 drops the older build's schemas only, and its next build runs dbt again", async () => {
    const build = (commit: string) => ws.nx(['run', 'analytics:isolated-build', `--ref=${commit}`, '--target=pg'], env);
    const older = ws.excludeReturned;
    const newer = ws.averagePayment;
    expectSuccess(await build(older));
    expectSuccess(await build(newer));
    const lookalike = `${base}_${short(older)}_lookalike`;
    await withPostgres(async (client) => {
      await client.query(`create schema "${lookalike}"`);
      await client.query(`create table "${lookalike}".kept as select 1 as one`);
    });
    expect(await schemasStartingWith(`${base}_${short(older)}`)).toEqual(
      [...buildSchemas(base, older), lookalike].sort(),
    );
    expect(await schemasStartingWith(`${base}_${short(newer)}`)).toEqual(buildSchemas(base, newer));

    const cleaned = await ws.nx(['run', 'analytics:clean', '--keep=1', '--target=pg'], env);
    expectSuccess(cleaned);
    expect(actionOf(cleaned, older)).toBe('clean');
    expect(actionOf(cleaned, newer)).toBe('keep');
    expect(cleaned.output).toMatch(/Cleaned 1 build/);
    expect(await schemasStartingWith(`${base}_${short(older)}`)).toEqual([lookalike]);
    const kept = await withPostgres((client) => client.query(`select one from "${lookalike}".kept`));
    expect(kept.rows).toEqual([{ one: 1 }]);
    expect(await schemasStartingWith(`${base}_${short(newer)}`)).toEqual(buildSchemas(base, newer));
    expect(existsSync(join(ws.dir, '.dot', short(older)))).toBe(false);
    expect(worktrees(ws.dir)).not.toContain(worktreeOf(older));
    expect(worktrees(ws.dir)).toContain(worktreeOf(newer));

    const rebuilt = await build(older);
    expectSuccess(rebuilt);
    expect(rebuilt.output).not.toMatch(HIT);
    expect(await schemasStartingWith(`${base}_${short(older)}`)).toEqual(
      [...buildSchemas(base, older), lookalike].sort(),
    );
    const orders = await withPostgres((client) =>
      client.query(`select count(*)::int as n from "${base}_${short(older)}".stg_orders`),
    );
    expect(orders.rows).toEqual([{ n: 8 }]);
  });
});
