import { DBT_TARGET_FROM_CLI, dbtTargetFromArgv, preTasksExecution } from './pre-tasks';

const argv = (...args: string[]) => ['/usr/bin/node', '/ws/node_modules/.bin/nx', ...args];

describe('dbtTargetFromArgv', () => {
  it.each([
    [['run', 'analytics:isolated-build', '--target=ci'], 'ci'],
    [['run', 'analytics:isolated-build', '--target', 'ci', '--ref=main'], 'ci'],
    [['run', 'analytics:isolated-build', '-t', 'prod'], 'prod'],
    [['run', 'analytics:isolated-build', '-t=prod'], 'prod'],
    [['analytics:isolated-build', '--target=ci'], 'ci'],
  ])('reads the dbt target of %j', (args, target) => {
    expect(dbtTargetFromArgv(argv(...args))).toBe(target);
  });

  it.each([
    [['run', 'analytics:isolated-build', '--ref=main']],
    [['run-many', '-t', 'isolated-build']],
    [['affected', '--target', 'isolated-build']],
    [['run', '--project', 'analytics', '--target', 'isolated-build']],
    [['show', 'projects']],
  ])('leaves %j alone: there --target names the Nx target', (args) => {
    expect(dbtTargetFromArgv(argv(...args))).toBeUndefined();
  });
});

describe('preTasksExecution', () => {
  afterEach(() => delete process.env[DBT_TARGET_FROM_CLI]);

  it('hands the dbt target to the executor through the environment', async () => {
    await preTasksExecution(undefined, {
      id: 'test',
      workspaceRoot: '/ws',
      nxJsonConfiguration: {},
      argv: argv('run', 'analytics:isolated-build', '--target=ci'),
    });
    expect(process.env[DBT_TARGET_FROM_CLI]).toBe('ci');
  });
});
