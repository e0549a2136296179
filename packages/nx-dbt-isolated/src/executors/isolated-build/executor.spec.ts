import type { ExecutorContext } from '@nx/devkit';
import { logger } from '../logger';
import { isolatedBuild } from '../../core/build/run-build';
import type { IsolatedBuildRequest } from '../../core/build/steps/context';
import { UserError } from '../../core/workspace/errors';
import executor from './executor';
import {
  buildKeyVariable,
  DBT_TARGET_FROM_CLI,
  DEFER_TO_FROM_CLI,
  EXCLUDE_FROM_CLI,
  REF_FROM_CLI,
} from '../../contract';

jest.mock('../../core/build/run-build');
const build = jest.mocked(isolatedBuild);

const context = {
  root: '/ws',
  cwd: '/ws',
  isVerbose: false,
  projectName: 'analytics',
  targetName: 'isolated-build',
  projectsConfigurations: { version: 2, projects: { analytics: { root: 'dbt/analytics' } } },
  nxJsonConfiguration: {},
  projectGraph: { nodes: {}, dependencies: {} },
} as unknown as ExecutorContext;

const succeeded = {
  success: true,
  paths: { targetPath: '/ws/.dot/abcd1234/analytics/dev/target' },
  record: {
    commit: 'abcd1234'.padEnd(40, '0'),
    ref: 'main',
    schema: 'analytics_abcd1234',
    schemas: ['analytics_abcd1234'],
    target: 'dev',
    warehouse: { type: 'duckdb', location: '/ws/warehouse.duckdb' },
    results: { byStatus: { success: 3 }, failures: [] },
    status: 'succeeded',
  },
} as unknown as Awaited<ReturnType<typeof isolatedBuild>>;

function requestOfLastCall(): IsolatedBuildRequest {
  return build.mock.calls[build.mock.calls.length - 1][0];
}

describe('isolated-build executor', () => {
  const keyVariable = buildKeyVariable('dbt/analytics', 'isolated-build');
  beforeEach(() => {
    process.env[keyVariable] = 'key-from-the-hook';
    build.mockResolvedValue(succeeded);
    jest.spyOn(logger, 'info').mockImplementation(() => undefined);
    jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => {
    build.mockReset();
    jest.restoreAllMocks();
    delete process.env[DBT_TARGET_FROM_CLI];
    delete process.env[REF_FROM_CLI];
    delete process.env[DEFER_TO_FROM_CLI];
    delete process.env[EXCLUDE_FROM_CLI];
    delete process.env[keyVariable];
  });

  it('builds --ref as typed on the command line, which Nx turns into a number when it is all digits', async () => {
    await executor({ ref: 1234567 }, context);
    expect(requestOfLastCall().ref).toBe('1234567');
    process.env[REF_FROM_CLI] = '0012345';
    await executor({ ref: 12345 }, context);
    expect(requestOfLastCall().ref).toBe('0012345');
  });

  it('refuses an empty --ref= or --deferTo=, which Nx turns into 0, in one line', async () => {
    for (const [variable, flag] of [
      [REF_FROM_CLI, '--ref'],
      [DEFER_TO_FROM_CLI, '--deferTo'],
    ]) {
      process.env[variable] = '';
      expect(await executor({ ref: 0, deferTo: 0 }, context)).toEqual({ success: false });
      expect(logger.error).toHaveBeenLastCalledWith(
        `nx-dbt-isolated: ${flag}= is empty: name a branch, tag or commit (${flag}=main), or leave the flag out.`,
      );
      delete process.env[variable];
    }
    expect(build).not.toHaveBeenCalled();
  });

  it("passes --exclude of nx run, which Nx keeps from the options, to dbt over the option's", async () => {
    await executor({ exclude: 'stg_orders' }, context);
    expect(requestOfLastCall().selection.exclude).toEqual(['stg_orders']);
    process.env[EXCLUDE_FROM_CLI] = JSON.stringify(['countries', 'tag:nightly,config.materialized:table']);
    await executor({ exclude: 'stg_orders' }, context);
    expect(requestOfLastCall().selection.exclude).toEqual(['countries', 'tag:nightly,config.materialized:table']);
  });

  it('builds HEAD with dbt build by default, for the project at its root', async () => {
    expect(await executor({}, context)).toEqual({ success: true });
    expect(requestOfLastCall()).toMatchObject({
      workspaceRoot: '/ws',
      projectRoot: 'dbt/analytics',
      project: 'analytics',
      ref: 'HEAD',
      command: 'build',
      expectedKey: 'key-from-the-hook',
    });
  });

  it('passes --deferTo as typed and --buildBase as a build through Nx, and reports what a slim build deferred to', async () => {
    process.env[DEFER_TO_FROM_CLI] = '0123456';
    const slim = {
      ...succeeded,
      record: {
        ...succeeded.record,
        deferredTo: { commit: 'f'.repeat(40), ref: 'main', schema: 'analytics_ffffffff' },
      },
    };
    build.mockResolvedValue(slim as typeof succeeded);
    await executor({ deferTo: 123456, buildBase: true }, context);
    const request = requestOfLastCall();
    expect(request.deferTo).toBe('0123456');
    expect(request.buildBase).toEqual(expect.any(Function));
    expect(request.targetName).toBe('isolated-build');
    expect(logger.info).toHaveBeenCalledWith(
      expect.stringContaining('deferred  to analytics_ffffffff (main, ffffffffffff)'),
    );
    delete process.env[DEFER_TO_FROM_CLI];
    await executor({ deferTo: 'main' }, context);
    expect(requestOfLastCall()).toMatchObject({ deferTo: 'main', buildBase: undefined });
  });

  it('refuses to run a cached build that the plugin hook did not key', async () => {
    delete process.env[keyVariable];
    expect(await executor({}, context)).toEqual({ success: false });
    expect(build).not.toHaveBeenCalled();
    expect(jest.mocked(logger.error).mock.calls[0][0]).toMatch(/no cache key for this build: register the plugin/);
  });

  it('needs no key where the target is not cached', async () => {
    delete process.env[keyVariable];
    const uncached = { ...context, target: { cache: false } } as ExecutorContext;
    expect(await executor({}, uncached)).toEqual({ success: true });
    expect(requestOfLastCall().expectedKey).toBeUndefined();
  });

  it('passes selection options to dbt as lists, and vars objects as JSON', async () => {
    await executor(
      { ref: 'v1.2', select: 'stg_orders', exclude: ['a', 'b'], vars: { day: '2026-01-01' }, args: '--fail-fast' },
      context,
    );
    expect(requestOfLastCall().selection).toEqual({
      select: ['stg_orders'],
      exclude: ['a', 'b'],
      selector: undefined,
      vars: '{"day":"2026-01-01"}',
      threads: undefined,
      fullRefresh: undefined,
      extraArgs: ['--fail-fast'],
    });
  });

  it('takes the dbt target from `nx run … --target`, over the target option', async () => {
    process.env[DBT_TARGET_FROM_CLI] = 'ci';
    await executor({ target: 'dev' }, context);
    expect(requestOfLastCall().target).toBe('ci');
  });

  it('turns a user error into a failed task with its message, not a stack trace', async () => {
    build.mockRejectedValue(new UserError("ref 'nope' does not name a commit"));
    expect(await executor({ ref: 'nope' }, context)).toEqual({ success: false });
  });

  it('lets an unexpected error through', async () => {
    build.mockRejectedValue(new TypeError('bug'));
    await expect(executor({}, context)).rejects.toThrow('bug');
  });

  it('reports a failed dbt run as a failed task', async () => {
    build.mockResolvedValue({ ...succeeded, success: false, record: { ...succeeded.record, status: 'failed' } });
    expect(await executor({}, context)).toEqual({ success: false });
  });
});
