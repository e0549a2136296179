import { dbtArgs, depsArgs, refusePluginOwnedArgs, runOperationArgs, storesAllTestFailures } from './args';
import { UserError } from '../workspace/errors';
import { thrown } from '../testing/thrown';

describe('dbtArgs', () => {
  const where = {
    projectDir: '/ws/.dot/abcd1234/worktree/analytics',
    profilesDir: '/ws/.dot/abcd1234/analytics/dev/profiles',
    target: 'dev',
    targetPath: '/ws/.dot/abcd1234/analytics/dev/target',
    logPath: '/ws/.dot/abcd1234/analytics/dev/logs',
  };
  const locations = [
    '--project-dir',
    where.projectDir,
    '--profiles-dir',
    where.profilesDir,
    '--target',
    'dev',
    '--target-path',
    where.targetPath,
    '--log-path',
    where.logPath,
  ];

  it('passes the command and every location, and nothing else by default', () => {
    expect(dbtArgs('build', where)).toEqual(['build', ...locations]);
    expect(dbtArgs('run', where, {})).toEqual(['run', ...locations]);
  });

  it('adds every selection option, each value as its own argument', () => {
    const args = dbtArgs('build', where, {
      select: ['stg_orders+', 'tag:daily'],
      exclude: ['legacy'],
      selector: 'nightly',
      vars: '{"day": "2024-01-01"}',
      threads: 4,
      fullRefresh: true,
      extraArgs: ['--fail-fast', '--warn-error'],
    });
    expect(args).toEqual([
      'build',
      ...locations,
      '--select',
      'stg_orders+',
      'tag:daily',
      '--exclude',
      'legacy',
      '--selector',
      'nightly',
      '--vars',
      '{"day": "2024-01-01"}',
      '--threads',
      '4',
      '--full-refresh',
      '--fail-fast',
      '--warn-error',
    ]);
  });

  it('leaves out empty lists, a false full refresh and an empty vars text, but keeps zero threads', () => {
    expect(dbtArgs('seed', where, { select: [], exclude: [], vars: '', fullRefresh: false, threads: 0 })).toEqual([
      'seed',
      ...locations,
      '--threads',
      '0',
    ]);
  });
});

// The run that executes is the run that was checked (issue 14, 1.2).
describe('refusePluginOwnedArgs', () => {
  it.each([
    [['--profiles-dir', '/ws/analytics'], '--profiles-dir', 'the profilesDir option'],
    [['--vars', '{publish: true}'], '--vars', 'the vars option'],
    [['--vars={publish: true}'], '--vars', 'the vars option'],
    [['--target', 'prod'], '--target', 'the target option'],
    [['-t', 'prod'], '-t', 'the target option'],
    [['-tprod'], '-t', 'the target option'],
    [['--fail-fast', '-xt', 'prod'], '-t', 'the target option'],
    [['--profile', 'prod_profile'], '--profile', "'profile:' in dbt_project.yml"],
    [['--project-dir', '/elsewhere'], '--project-dir', 'the Nx project it runs for'],
    [['--target-path', '/tmp/t'], '--target-path', 'the plugin (the build folder under .dot)'],
    [['--defer', '--state', 'prod-artifacts'], '--defer', 'the deferTo option'],
  ])('refuses %j in one line naming %s and the option to use', (args, flag, option) => {
    const error = thrown(() => refusePluginOwnedArgs(args));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `args holds ${flag}, which the plugin sets itself so that dbt runs exactly what the isolation check read: use ${option} instead, and remove ${flag} from args.`,
    );
  });

  it('lets through flags that change neither the profile, the vars nor the manifest', () => {
    expect(() =>
      refusePluginOwnedArgs(['--fail-fast', '-x', '--store-failures', '--empty', '--select', 'tag:nightly', '-q']),
    ).not.toThrow();
    expect(() => refusePluginOwnedArgs(undefined)).not.toThrow();
  });
});

describe('storesAllTestFailures', () => {
  it('is true for --store-failures in args or a true DBT_STORE_FAILURES, as dbt reads them', () => {
    expect(storesAllTestFailures(['--store-failures'], {})).toBe(true);
    expect(storesAllTestFailures([], { DBT_STORE_FAILURES: 'True' })).toBe(true);
    expect(storesAllTestFailures([], { DBT_ENGINE_STORE_FAILURES: '1' })).toBe(true);
    expect(storesAllTestFailures([], { DBT_STORE_FAILURES: 'false' })).toBe(false);
    expect(storesAllTestFailures(['--fail-fast'], {})).toBe(false);
  });
});

describe('depsArgs and runOperationArgs', () => {
  it('give dbt deps its project, profiles and log folders, and no target', () => {
    expect(depsArgs({ projectDir: '/p', profilesDir: '/pr', logPath: '/l' })).toEqual([
      'deps',
      '--project-dir',
      '/p',
      '--profiles-dir',
      '/pr',
      '--log-path',
      '/l',
    ]);
  });

  it('give dbt run-operation the macro, its arguments as JSON, the profile and every folder', () => {
    const where = {
      projectDir: '/p',
      profilesDir: '/pr',
      profile: 'nx',
      target: 'dev',
      targetPath: '/t',
      logPath: '/l',
    };
    expect(runOperationArgs('drop_schemas', { schemas: ['a'] }, where)).toEqual([
      '--quiet',
      'run-operation',
      'drop_schemas',
      '--args',
      '{"schemas":["a"]}',
      '--project-dir',
      '/p',
      '--profiles-dir',
      '/pr',
      '--profile',
      'nx',
      '--target',
      'dev',
      '--target-path',
      '/t',
      '--log-path',
      '/l',
    ]);
  });
});
