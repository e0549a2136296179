import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { relationsIn } from '../support/duckdb';
import { fixtureRelations, postgresBuildRelations } from '../support/fixture-relations';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith, withPostgres } from '../support/postgres';
import { startNxJob, type NxJob } from '../support/process-group';
import { readBuildRecord } from '../support/workflows';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const build = (commit: string, ...more: string[]) => [
  'run',
  'analytics:isolated-build',
  `--ref=${commit}`,
  '--skip-nx-cache',
  ...more,
];
/** Longer than the 20 s after which the old locks of a quiet owner were taken over. */
const PAUSE_MS = 25_000;
/** dbt has written its first relation: the schemas exist and the run is under way. */
const DBT_WROTE = /\d+ of \d+ OK (loaded seed|created)/;

/** The relations in the PostgreSQL schemas starting with `prefix`, as `schema.name`, sorted. */
async function postgresTables(prefix: string): Promise<string[]> {
  return withPostgres(async (client) => {
    const result = await client.query<{ relation: string }>(
      `select table_schema || '.' || table_name as relation from information_schema.tables
       where starts_with(table_schema, $1) order by 1`,
      [prefix],
    );
    return result.rows.map((row) => row.relation);
  });
}

/** The process group of `pid`, from /proc/<pid>/stat (fields after the command name: state, ppid, pgrp). */
function processGroupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('a build paused with Ctrl-Z (SIGSTOP) keeps its locks and its lease however long it is stopped', () => {
  const base = `nxdbt_paused_${randomBytes(4).toString('hex')}`;
  const env = { ANALYTICS_PG_SCHEMA: base };
  let ws: TestWorkspace;
  let jobs: NxJob[] = [];

  beforeAll(() => {
    ws = createTestWorkspace();
  });
  afterEach(async () => {
    for (const job of jobs) job.signal('SIGKILL');
    await Promise.all(jobs.map((job) => job.ended));
    jobs = [];
  });
  afterAll(async () => {
    await dropSchemasStartingWith(base);
    ws.remove();
  });

  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const job = startNxJob(ws.dir, args, extraEnv);
    jobs.push(job);
    return job;
  };

  it('clean --ref of the paused build refuses, naming its stopped process, and drops nothing; resumed, the build succeeds', async () => {
    // PostgreSQL: the test can read the warehouse while the paused dbt holds its connections.
    const commit = commitBeside(ws.dir, ws.main, 'paused/postgres', 'Paused build on PostgreSQL');
    const schema = `${base}_${short(commit)}`;
    const paused = start(build(commit, '--target=pg'), env);
    await paused.waitFor(DBT_WROTE);
    paused.signal('SIGSTOP');
    await sleep(PAUSE_MS);
    const before = await postgresTables(schema);
    expect(before).not.toEqual([]);

    const clean = await ws.nx(['run', 'analytics:clean', `--ref=${commit}`, '--target=pg'], env);
    expect(clean.code).not.toBe(0);
    const refusal = clean.output.match(
      /is running now in process (\d+) on \S+, which is stopped \(resume it with fg or kill -CONT (\d+)\): clean it once that build has finished/,
    );
    expect(refusal).not.toBeNull();
    expect(refusal![1]).toBe(refusal![2]);
    expect(processGroupOf(Number(refusal![1]))).toBe(paused.pid);
    expect(await postgresTables(schema)).toEqual(before);
    expect(existsSync(join(ws.dir, '.dot', short(commit), 'worktree', 'analytics', 'dbt_project.yml'))).toBe(true);
    expect(readBuildRecord(ws.dir, commit, 'pg').status).toBe('running');

    paused.signal('SIGCONT');
    expect(outcome(await paused.ended)).toEqual(SUCCEEDED);
    expect(readBuildRecord(ws.dir, commit, 'pg').status).toBe('succeeded');
    expect(await postgresTables(schema)).toEqual(postgresBuildRelations(schema));
  });

  it('a build of another commit into the same DuckDB file waits for the paused writer, then succeeds', async () => {
    const first = commitBeside(ws.dir, ws.main, 'paused/duckdb-first', 'Paused build on DuckDB');
    const second = commitBeside(ws.dir, ws.main, 'paused/duckdb-second', 'Waiting build on DuckDB');
    const paused = start(build(first));
    await paused.waitFor(DBT_WROTE);
    paused.signal('SIGSTOP');

    const waiting = start(build(second));
    await waiting.waitFor(
      /waiting for another build to finish writing \S+warehouse\.duckdb \(DuckDB allows one writer at a time\), held by process \d+ on \S+, which is stopped \(resume it with fg or kill -CONT \d+\)/,
    );
    await sleep(PAUSE_MS);
    expect(waiting.running()).toBe(true);

    paused.signal('SIGCONT');
    const [pausedResult, waitingResult] = await Promise.all([paused.ended, waiting.ended]);
    expect(outcome(pausedResult)).toEqual(SUCCEEDED);
    expect(outcome(waitingResult)).toEqual(SUCCEEDED);
    expect(waitingResult.output).not.toMatch(/Could not set lock on file/);
    const warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
    for (const commit of [first, second]) {
      const schema = `analytics_${short(commit)}`;
      expect(readBuildRecord(ws.dir, commit).status).toBe('succeeded');
      expect(relationsIn(warehouse, schema)).toEqual(fixtureRelations(schema));
    }
  });
});
