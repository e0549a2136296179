import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { relationsIn } from '../support/duckdb';
import { git, commitBeside } from '../../fixture-workspace/repo';
import { fixtureRelations, postgresBuildRelations } from '../support/fixture-relations';
import { fsck, fsckErrors, worktreeList } from '../support/git-health';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { outcome, SUCCEEDED } from '../support/outcome';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);
/** Every build here must really run dbt: no Nx cache hit stands in for it. */
const build = (project: string, ref: string, ...more: string[]) => [
  'run',
  `${project}:isolated-build`,
  `--ref=${ref}`,
  '--skip-nx-cache',
  ...more,
];
const WAITED_FOR_BUILD = /waiting for another build of \S+ at this commit to finish/;
const WAITED_FOR_DUCKDB = /waiting for another build to finish writing/;
const WAITED_FOR_CHECKOUT = /waiting for another build or clean of this commit to finish with its checkout/;

interface BuildRecord {
  commit: string;
  status: string;
  checkout?: string;
  startedAt: string;
  endedAt?: string;
}

/** The most builds whose records' [startedAt, endedAt] overlap at one moment. */
function mostAtOnce(records: BuildRecord[]): number {
  const events = records.flatMap((record) => [
    { at: Date.parse(record.startedAt), step: 1 },
    { at: Date.parse(record.endedAt ?? record.startedAt), step: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.step - b.step);
  let now = 0;
  let most = 0;
  for (const { step } of events) most = Math.max(most, (now += step));
  return most;
}

const tail = (result: NxResult) => result.output.slice(-2500);
const BULK_FILES = Object.fromEntries(
  Array.from({ length: 8_000 }, (_, index) => [`analytics/bulk/file-${String(index).padStart(4, '0')}.txt`, 'bulk\n']),
);

describe('concurrent isolated builds on real Nx, git, dbt, DuckDB and PostgreSQL', () => {
  const pgBase = `nxdbt_conc_${randomBytes(4).toString('hex')}`;
  const figures: string[] = [];
  let ws: TestWorkspace;
  let warehouse: string;

  const recordOf = (commit: string, project = 'analytics', target = 'dev'): BuildRecord =>
    JSON.parse(readFileSync(join(ws.dir, '.dot', short(commit), project, target, 'build.json'), 'utf8'));
  const checkoutPath = (commit: string) => join(ws.dir, '.dot', short(commit), 'worktree');
  /** What is wrong with the checkouts git records and with the repository, as sentences; none when sound. */
  const repositoryProblems = (commits: string[]): string[] => {
    const problems: string[] = [];
    const entries = worktreeList(ws.dir);
    for (const commit of commits) {
      const listed = entries.filter((entry) => entry.path === checkoutPath(commit));
      const atCommit = entries.filter((entry) => entry.head === commit && entry.path.startsWith(join(ws.dir, '.dot')));
      if (listed.length !== 1 || atCommit.length !== 1) {
        problems.push(
          `${short(commit)}: git lists ${listed.length} checkout(s) at its folder, ${atCommit.length} at it`,
        );
      }
      if (listed.some((entry) => entry.locked !== undefined)) problems.push(`${short(commit)}: its checkout is locked`);
    }
    for (const entry of entries.filter((entry) => entry.prunable !== undefined)) {
      problems.push(`git would prune ${entry.path}: ${entry.prunable}`);
    }
    const checked = fsck(ws.dir);
    const errors = fsckErrors(checked.output);
    if (checked.code !== 0 || errors.length > 0) problems.push(`git fsck exited ${checked.code}: ${errors.join('; ')}`);
    return problems;
  };

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
  });
  afterAll(async () => {
    console.log(['Concurrency figures', ...figures.map((line) => `  ${line}`)].join('\n'));
    await dropSchemasStartingWith(pgBase);
    ws?.remove();
  });

  // 40 real builds in the first test: about 10 s a round on an idle 2-core machine, 31 s (619 s in
  // all) on one shared with other test runs, past the 10 minutes of e2e/jest.config.ts.
  jest.setTimeout(45 * 60_000);

  it('builds one commit from two nx processes at once, 20 rounds: every run succeeds, one checkout, a sound repository', async () => {
    const rounds = 20;
    const failures: string[] = [];
    let waitedForBuild = 0;
    let waitedForDuckDb = 0;
    let waitedForCheckout = 0;
    let commit = '';
    const started = Date.now();
    for (let round = 1; round <= rounds; round++) {
      // Odd rounds build a new commit, so the two processes race to make its checkout and run
      // dbt deps; even rounds build that commit again, on the checkout it has. The new commits
      // carry 8,000 more files in the project (so in its sparse checkout), so that making the
      // checkout takes long enough (about half a second) for the two processes, which nx starts
      // at slightly different moments, to meet there.
      if (round % 2 === 1) {
        commit = commitBeside(ws.dir, ws.main, `concurrency/round-${round}`, `Round ${round}`, BULK_FILES);
      }
      const runs = await Promise.all([0, 1].map(() => ws.nx(build('analytics', commit))));
      const problems: string[] = [];
      runs.forEach((run, index) => {
        if (run.code !== 0) problems.push(`run ${index + 1} exited ${run.code}:\n${tail(run)}`);
      });
      if (runs.some((run) => WAITED_FOR_BUILD.test(run.output))) waitedForBuild++;
      if (runs.some((run) => WAITED_FOR_DUCKDB.test(run.output))) waitedForDuckDb++;
      if (runs.some((run) => WAITED_FOR_CHECKOUT.test(run.output))) waitedForCheckout++;
      problems.push(...repositoryProblems([commit]));
      const locks = readdirSync(join(ws.dir, '.dot', 'locks')).filter((name) => name.endsWith('.lock'));
      if (locks.length > 0) problems.push(`locks still held after both runs ended: ${locks.join(', ')}`);
      const recordFile = join(ws.dir, '.dot', short(commit), 'analytics', 'dev', 'build.json');
      const status = existsSync(recordFile) ? recordOf(commit).status : 'nothing: there is none';
      if (status !== 'succeeded') problems.push(`build.json says ${status}`);
      const relations = relationsIn(warehouse, `analytics_${short(commit)}`);
      if (JSON.stringify(relations) !== JSON.stringify(fixtureRelations(`analytics_${short(commit)}`))) {
        problems.push(`the warehouse holds ${relations.join(', ') || 'nothing'} for ${short(commit)}`);
      }
      if (problems.length > 0) failures.push(`round ${round} (${short(commit)}): ${problems.join('\n')}`);
    }
    const seconds = (Date.now() - started) / 1000;
    figures.push(
      `same commit, two nx processes at once: ${rounds} rounds (${rounds / 2} new commits, each built twice), ` +
        `${rounds * 2} runs, ${failures.length} failed round(s), ${seconds.toFixed(0)}s in all ` +
        `(${(seconds / rounds).toFixed(1)}s a round); one run waited for the other at the checkout in ` +
        `${waitedForCheckout} round(s), for its build lock in ${waitedForBuild}, for the DuckDB writer lock in ${waitedForDuckDb}`,
    );
    expect(failures).toEqual([]);
    expect(
      queryDuckDb<{ n: number }>(warehouse, `select count(*) as n from analytics_${short(commit)}.stg_orders`)[0].n,
    ).toBe(8);
  });

  it('builds two dbt projects of the workspace at one commit at once, on one shared checkout', async () => {
    // A second buildable dbt project, its own profile, DuckDB file and schema base.
    cpSync(join(ws.dir, 'analytics'), join(ws.dir, 'marketing'), {
      recursive: true,
      filter: (source) => !/\.duckdb(\.wal)?$|^(target|dbt_packages|logs)$/.test(basename(source)),
    });
    const edit = (file: string, change: (text: string) => string) =>
      writeFileSync(join(ws.dir, 'marketing', file), change(readFileSync(join(ws.dir, 'marketing', file), 'utf8')));
    edit('dbt_project.yml', (text) => text.replace(/\banalytics\b/g, 'marketing'));
    edit('profiles.yml', (text) =>
      text
        .replace(/^analytics:/m, 'marketing:')
        .replace('path: warehouse.duckdb', 'path: marketing.duckdb')
        .replace(/^(\s+)schema: analytics$/m, '$1schema: marketing'),
    );
    git(ws.dir, 'add', 'marketing');
    git(ws.dir, 'commit', '-q', '-m', 'Marketing project');
    const commit = git(ws.dir, 'rev-parse', 'HEAD');
    const marketingWarehouse = join(ws.dir, 'marketing', 'marketing.duckdb');

    const result = await ws.nx([
      'run-many',
      '-t',
      'isolated-build',
      '--projects=analytics,marketing',
      `--ref=${commit}`,
      '--parallel=2',
      '--skip-nx-cache',
    ]);
    expect(outcome(result)).toEqual(SUCCEEDED);
    expect(result.output).toMatch(/Successfully ran target isolated-build for 2 projects/);

    expect(relationsIn(warehouse, `analytics_${short(commit)}`)).toEqual(
      fixtureRelations(`analytics_${short(commit)}`),
    );
    expect(relationsIn(marketingWarehouse, `marketing_${short(commit)}`)).toEqual(
      fixtureRelations(`marketing_${short(commit)}`),
    );
    expect(relationsIn(marketingWarehouse, 'analytics')).toEqual([]);
    const records = [recordOf(commit, 'analytics'), recordOf(commit, 'marketing')];
    expect(records.map((record) => record.status)).toEqual(['succeeded', 'succeeded']);
    // One made the checkout, the other widened it to its own folder; the two ran at the same time.
    expect(records.map((record) => record.checkout).sort()).toEqual(['made', 'widened']);
    expect(mostAtOnce(records)).toBe(2);
    expect(repositoryProblems([commit])).toEqual([]);
    figures.push(
      `two projects at one commit (run-many --parallel=2): both succeeded, checkouts ${records
        .map((record) => record.checkout)
        .join('/')}, builds overlapped`,
    );
  });

  it('builds two dbt targets of one commit at once: dbt deps runs once, both builds succeed, each in its own warehouse', async () => {
    const commit = commitBeside(ws.dir, ws.main, 'concurrency/two-targets', 'Two targets at once');
    const runs = await Promise.all([
      ws.nx(build('analytics', commit)),
      ws.nx(build('analytics', commit, '--target=pg'), { ANALYTICS_PG_SCHEMA: pgBase }),
    ]);
    runs.forEach((run) => expect(outcome(run)).toEqual(SUCCEEDED));
    // One installed the checkout's packages; the other waited for them, then built on them.
    expect(runs.filter((run) => /• dbt deps \(/.test(run.output))).toHaveLength(1);
    expect(relationsIn(warehouse, `analytics_${short(commit)}`)).toEqual(
      fixtureRelations(`analytics_${short(commit)}`),
    );
    const schema = `${pgBase}_${short(commit)}`;
    expect(await schemasStartingWith(schema)).toEqual([schema, `${schema}_finance`, `${schema}_raw`]);
    const records = [recordOf(commit, 'analytics', 'dev'), recordOf(commit, 'analytics', 'pg')];
    expect(records.map((record) => record.status)).toEqual(['succeeded', 'succeeded']);
    expect(mostAtOnce(records)).toBe(2);
    expect(repositoryProblems([commit])).toEqual([]);
    figures.push(
      `two dbt targets of one commit at once: both succeeded, dbt deps ran in ${runs.filter((run) => /• dbt deps \(/.test(run.output)).length} of them, builds overlapped`,
    );
  });

  it('builds two commits at once into one DuckDB file, each schema holding its own commit', async () => {
    const runs = await Promise.all([ws.v1, ws.featureVip].map((commit) => ws.nx(build('analytics', commit))));
    runs.forEach((run) => expect(outcome(run)).toEqual(SUCCEEDED));

    expect(relationsIn(warehouse, `analytics_${short(ws.v1)}`)).toEqual(fixtureRelations(`analytics_${short(ws.v1)}`));
    expect(relationsIn(warehouse, `analytics_${short(ws.featureVip)}`)).toEqual(
      fixtureRelations(`analytics_${short(ws.featureVip)}`, ['vip_customers']),
    );
    const orders = (commit: string) =>
      queryDuckDb<{ n: number }>(warehouse, `select count(*) as n from analytics_${short(commit)}.stg_orders`)[0].n;
    expect([orders(ws.v1), orders(ws.featureVip)]).toEqual([10, 8]);
    expect([recordOf(ws.v1).status, recordOf(ws.featureVip).status]).toEqual(['succeeded', 'succeeded']);
    expect(repositoryProblems([ws.v1, ws.featureVip])).toEqual([]);
    figures.push(
      `two commits, one DuckDB file: both succeeded; ${runs.filter((run) => WAITED_FOR_DUCKDB.test(run.output)).length} waited for the writer lock`,
    );
  });

  it('builds four commits at once on one PostgreSQL server, in parallel, each into its own schemas', async () => {
    const commits = [ws.v1, ws.excludeReturned, ws.averagePayment, ws.featureVip];
    const started = Date.now();
    const runs = await Promise.all(
      commits.map((commit) => ws.nx(build('analytics', commit, '--target=pg'), { ANALYTICS_PG_SCHEMA: pgBase })),
    );
    const seconds = (Date.now() - started) / 1000;
    runs.forEach((run) => expect(outcome(run)).toEqual(SUCCEEDED));
    // PostgreSQL takes concurrent sessions: no build waits for a warehouse lock.
    for (const run of runs) expect(run.output).not.toMatch(WAITED_FOR_DUCKDB);

    for (const commit of commits) {
      const schema = `${pgBase}_${short(commit)}`;
      expect(await schemasStartingWith(schema)).toEqual([schema, `${schema}_finance`, `${schema}_raw`]);
      const tables = await withPostgres((client) =>
        client.query<{ relation: string }>(
          `select table_schema || '.' || table_name as relation from information_schema.tables
           where starts_with(table_schema, $1)`,
          [schema],
        ),
      );
      expect(tables.rows.map((row) => row.relation).sort()).toEqual(
        postgresBuildRelations(schema, commit === ws.featureVip ? ['vip_customers'] : []),
      );
    }
    const orders = await withPostgres(async (client) =>
      Promise.all(
        commits.map(async (commit) => {
          const result = await client.query<{ n: string }>(
            `select count(*) as n from "${pgBase}_${short(commit)}".stg_orders`,
          );
          return Number(result.rows[0].n);
        }),
      ),
    );
    expect(orders).toEqual([10, 8, 8, 8]);
    const records = commits.map((commit) => recordOf(commit, 'analytics', 'pg'));
    expect(records.map((record) => record.status)).toEqual(commits.map(() => 'succeeded'));
    const atOnce = mostAtOnce(records);
    expect(atOnce).toBeGreaterThanOrEqual(2);
    expect(repositoryProblems(commits)).toEqual([]);
    figures.push(
      `${commits.length} commits at once on PostgreSQL: all succeeded in ${seconds.toFixed(0)}s, up to ${atOnce} builds running at one moment`,
    );
  });
});
