import type { ExecutorContext } from '@nx/devkit';
import { logger } from '../logger';
import { UserError } from '../../core/workspace/errors';
import { runExecutor } from './run-executor';
import { DBT_TARGET_FROM_CLI, EXCLUDE_FROM_CLI, REF_FROM_CLI } from '../../contract';

interface Options {
  target?: string;
  ref?: string | number | (string | number)[];
  exclude?: string | string[];
}

const context = {
  root: '/ws',
  projectName: 'analytics',
  projectsConfigurations: { version: 2, projects: { analytics: { root: 'dbt/analytics' } } },
} as unknown as ExecutorContext;

describe('runExecutor', () => {
  beforeEach(() => jest.spyOn(logger, 'error').mockImplementation(() => undefined));
  afterEach(() => {
    jest.restoreAllMocks();
    delete process.env[DBT_TARGET_FROM_CLI];
    delete process.env[REF_FROM_CLI];
    delete process.env[EXCLUDE_FROM_CLI];
  });

  it('merges the dbt target for every executor, and the other carried values only where the spec carries them', async () => {
    process.env[DBT_TARGET_FROM_CLI] = 'ci';
    process.env[REF_FROM_CLI] = '1234567';
    process.env[EXCLUDE_FROM_CLI] = JSON.stringify(['big']);
    const seen: Options[] = [];
    const carrying = runExecutor<Options>(
      { usage: 'u', carries: ['ref', 'exclude'], needsProjectRoot: true },
      (run) => {
        seen.push(run.options);
        return Promise.resolve(true);
      },
    );
    const plain = runExecutor<Options>({ usage: 'u', needsProjectRoot: false }, (run) => {
      seen.push(run.options);
      return Promise.resolve(true);
    });
    await carrying({ target: 'dev', ref: 1234567, exclude: 'small' }, context);
    await plain({ target: 'dev', ref: ['main'] }, context);
    expect(seen).toEqual([
      { target: 'ci', ref: '1234567', exclude: ['big'] },
      { target: 'ci', ref: ['main'] },
    ]);
  });

  it('says how to run it when it runs without a project, or without the project folder it needs', async () => {
    const work = jest.fn(() => Promise.resolve(true));
    const executor = runExecutor<Options>({ usage: 'x runs on a project.', needsProjectRoot: true }, work);
    expect(await executor({}, { ...context, projectName: undefined })).toEqual({ success: false });
    expect(await executor({}, { ...context, projectsConfigurations: undefined } as unknown as ExecutorContext)).toEqual(
      { success: false },
    );
    expect(logger.error).toHaveBeenLastCalledWith('nx-dbt-isolated: x runs on a project.');
    expect(work).not.toHaveBeenCalled();
  });

  it('turns a UserError into one line and a failed task, and throws anything else', async () => {
    const failing = (error: Error) =>
      runExecutor<Options>({ usage: 'u', needsProjectRoot: true }, () => Promise.reject(error));
    expect(await failing(new UserError('no such ref.'))({}, context)).toEqual({ success: false });
    expect(logger.error).toHaveBeenLastCalledWith('nx-dbt-isolated: no such ref.');
    await expect(failing(new Error('bug'))({}, context)).rejects.toThrow('bug');
  });

  it('refuses an empty ref typed on the command line', async () => {
    process.env[REF_FROM_CLI] = '';
    const executor = runExecutor<Options>({ usage: 'u', carries: ['ref'], needsProjectRoot: true }, () =>
      Promise.resolve(true),
    );
    expect(await executor({ ref: 0 }, context)).toEqual({ success: false });
    expect(jest.mocked(logger.error).mock.calls[0][0]).toMatch(/--ref= is empty/);
  });
});
