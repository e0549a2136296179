import { homedir } from 'node:os';
import type { ExecutorContext } from '@nx/devkit';
import { logger } from '../executors/logger';
import { isolatedBuild } from '../core/build/run-build';
import { buildKey } from '../core/cache/key';
import { dbtTargetFor } from '../core/dbt/target';
import { UserError } from '../core/workspace/errors';
import { writeFakeDbt } from '../core/testing/fake-dbt';
import { makeTempRepo, type TempRepo } from '../core/testing/git-repo';
import executor from '../executors/isolated-build/executor';
import { setBuildKeys } from './build-keys';
import { buildKeyVariable, DBT_TARGET_FROM_CLI } from '../contract';

jest.mock('../core/build/run-build');
const build = jest.mocked(isolatedBuild);

const PROFILES = `
warehouse:
  target: dev
  outputs:
${['dev', 'ci', 'prod', 'qa']
  .map(
    (name) =>
      `    ${name}:\n      type: postgres\n      host: localhost\n      dbname: ${name}\n      schema: ${name}_me\n`,
  )
  .join('')}`;

/** Each source of the dbt target absent, empty, or naming a target of its own. */
const COMBINATIONS = [undefined, '', 'ci'].flatMap((commandLine) =>
  [undefined, '', 'prod'].flatMap((option) =>
    [undefined, '', 'qa'].map((dbtTargetEnv) => ({ commandLine, option, dbtTargetEnv })),
  ),
);

describe('the dbt target of a build and of its key', () => {
  let repo: TempRepo;
  let commit: string;
  const saved = { cli: process.env[DBT_TARGET_FROM_CLI], env: process.env.DBT_TARGET };

  beforeAll(() => {
    repo = makeTempRepo();
    commit = repo.commit('first', {
      '.gitignore': '.venv\n',
      'analytics/dbt_project.yml': 'name: analytics\nprofile: warehouse\n',
      'analytics/profiles.yml': PROFILES,
    });
    writeFakeDbt(repo.root);
    jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  });
  afterAll(() => {
    repo.cleanup();
    jest.restoreAllMocks();
    restore(DBT_TARGET_FROM_CLI, saved.cli);
    restore('DBT_TARGET', saved.env);
  });

  function restore(name: string, value: string | undefined): void {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }

  /** The dbt target the build runs against: what the executor asks core for, resolved as run-build.ts does. */
  async function builtTarget(commandLine?: string, option?: string): Promise<string | undefined> {
    build.mockRejectedValue(new UserError('only the request is looked at'));
    restore(DBT_TARGET_FROM_CLI, commandLine);
    const context = {
      root: repo.root,
      projectName: 'analytics',
      targetName: 'isolated-build',
      target: { cache: false },
      projectsConfigurations: { version: 2, projects: { analytics: { root: 'analytics' } } },
    } as unknown as ExecutorContext;
    await executor(option === undefined ? {} : { target: option }, context);
    const request = build.mock.calls[build.mock.calls.length - 1][0];
    return dbtTargetFor(request.target, request.env);
  }

  it.each(COMBINATIONS)(
    'agree with --target=$commandLine, option $option, DBT_TARGET=$dbtTargetEnv',
    async ({ commandLine, option, dbtTargetEnv }) => {
      restore('DBT_TARGET', dbtTargetEnv);
      const env: NodeJS.ProcessEnv = { PATH: '', ...(dbtTargetEnv !== undefined && { DBT_TARGET: dbtTargetEnv }) };
      const task = { project: 'analytics', target: 'isolated-build', root: 'analytics', options: { target: option } };
      await setBuildKeys(repo.root, [task], { dbtTarget: commandLine }, env);
      const dbtTarget = await builtTarget(commandLine, option);
      const request = { workspaceRoot: repo.root, project: 'analytics', projectRoot: 'analytics', commit };
      const expected = buildKey({ ...request, profile: 'warehouse', dbtTarget, env, homeDir: homedir() });
      expect(env[buildKeyVariable('analytics', 'isolated-build')]).toBe(expected);
    },
  );
});
