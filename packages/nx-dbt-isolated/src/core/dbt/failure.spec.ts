import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dbtLogMark, dbtLogSince, knownDbtFailure } from './failure';
import { makeTempDir, removeDir } from '../testing/git-repo';

// Lines as dbt 1.11 and dbt-duckdb 1.11 write them to dbt.log.
const LOCKED = `[0m11:35:09.735604 [debug] [ThreadPool]: DuckDB adapter: duckdb error: IO Error: Could not set lock on file "/ws/analytics/warehouse.duckdb": Conflicting lock is held in /usr/bin/python3.11 (PID 24230). See also https://duckdb.org/docs/current/connect/concurrency\n`;
const MISSING = `[0m11:33:57.757230 [error] [MainThread]: Encountered an error:\nParsing Error\n  Env var required but not provided: 'ANALYTICS_THREADS'\n`;
const BAD_VALUE = `[0m11:34:12.192134 [error] [MainThread]: Encountered an error:\nRuntime Error\n  at path ['threads']: 'abc' is not of type 'integer'\n`;

describe('knownDbtFailure', () => {
  let dir: string;
  let profilesFile: string;
  const run = () => ({ profilesFile, dbtTarget: 'dev', ref: 'main' });

  beforeAll(() => {
    dir = makeTempDir();
    profilesFile = join(dir, 'profiles.yml');
    writeFileSync(
      profilesFile,
      'p:\n  outputs:\n    dev:\n      threads: "{{ env_var(\'ANALYTICS_THREADS\') | int }}"\n',
    );
  });
  afterAll(() => removeDir(dir));

  it('names the DuckDB file another program holds, and that program', () => {
    expect(knownDbtFailure(`noise\n${LOCKED}${LOCKED}`, run())?.message).toBe(
      "/ws/analytics/warehouse.duckdb is held open by another program, /usr/bin/python3.11 (PID 24230), and DuckDB lets one process at a time open a file for writing: close that program's connection (a notebook, a DuckDB shell, an IDE), then build again.",
    );
  });

  it('names a missing environment variable and the profile that reads it, or else the project', () => {
    expect(knownDbtFailure(MISSING, run())?.message).toBe(
      `environment variable ANALYTICS_THREADS is not set, and ${profilesFile} reads it with env_var('ANALYTICS_THREADS') and no default: set it (export ANALYTICS_THREADS=...) before the build, or give env_var() a default.`,
    );
    expect(knownDbtFailure(MISSING.replace(/ANALYTICS_THREADS/g, 'ORDERS_SINCE'), run())?.message).toMatch(
      /^environment variable ORDERS_SINCE is not set, and the project at main reads it/,
    );
  });

  it("names a value of the profile's target that dbt refuses", () => {
    expect(knownDbtFailure(BAD_VALUE, run())?.message).toBe(
      `target 'dev' of ${profilesFile} has a value dbt refuses (at ['threads']: 'abc' is not of type 'integer'): fix it there (or the environment variable it reads); every isolated build connects with the working tree's profile.`,
    );
  });

  it('leaves any other failure to dbt', () => {
    expect(knownDbtFailure('Compilation Error in model orders\n', run())).toBeUndefined();
  });
});

describe('dbtLogSince', () => {
  it('gives what dbt logged after the mark, and all of a log that was rotated meanwhile', () => {
    const logs = makeTempDir();
    try {
      expect(dbtLogMark(join(logs, 'none'))).toBe(0);
      mkdirSync(join(logs, 'a'));
      writeFileSync(join(logs, 'a', 'dbt.log'), 'an earlier run\n');
      const mark = dbtLogMark(join(logs, 'a'));
      appendFileSync(join(logs, 'a', 'dbt.log'), 'this run\n');
      expect(dbtLogSince(join(logs, 'a'), mark)).toBe('this run\n');
      writeFileSync(join(logs, 'a', 'dbt.log'), 'new\n');
      expect(dbtLogSince(join(logs, 'a'), mark)).toBe('new\n');
    } finally {
      removeDir(logs);
    }
  });
});
