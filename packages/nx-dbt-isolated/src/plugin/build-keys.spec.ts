import { homedir } from 'node:os';
import type { ProjectGraph, TargetConfiguration } from '@nx/devkit';
import { buildKey } from '../core/cache/key';
import { writeFakeDbt } from '../core/testing/fake-dbt';
import { makeTempDir, makeTempRepo, removeDir, writeFiles, type TempRepo } from '../core/testing/git-repo';
import { DEV_POSTGRES, profilesYaml } from '../core/testing/profiles';
import { isolatedBuildTasks, keyScope, setBuildKeys, type IsolatedBuildTask } from './build-keys';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from '../contract';

describe('buildKeyVariable', () => {
  it('gives each target of each project its own valid environment variable name', () => {
    const names = ['analytics', 'Analytics', 'my-app', 'my_app', '@scope/app'].map((project) =>
      buildKeyVariable(project, 'isolated-build'),
    );
    names.push(buildKeyVariable('analytics', 'build-prod'));
    // POSIX names: upper-case letters, digits and underscores, not starting with a digit.
    for (const name of names) expect(name).toMatch(/^[A-Z_][A-Z0-9_]*$/);
    expect(new Set(names).size).toBe(names.length);
    expect(buildKeyVariable('analytics', 'isolated-build')).toBe(names[0]);
  });
});

describe('isolatedBuildTasks', () => {
  const project = (name: string, root: string, targets: Record<string, TargetConfiguration>) => ({
    name,
    type: 'lib' as const,
    data: { root, targets },
  });
  const graph: ProjectGraph = {
    nodes: {
      analytics: project('analytics', 'dbt/analytics', {
        'isolated-build': { executor: ISOLATED_BUILD_EXECUTOR, options: { ref: 'main' } },
        'build-prod': { executor: ISOLATED_BUILD_EXECUTOR, options: { ref: 'prod', profilesDir: 'profiles' } },
        lint: { executor: 'nx:run-commands', options: { command: 'sqlfluff lint' } },
      }),
      finance: project('finance', 'dbt/finance', { 'isolated-build': { executor: ISOLATED_BUILD_EXECUTOR } }),
      web: project('web', 'apps/web', { build: { executor: '@nx/vite:build' }, 'isolated-build': {} }),
    },
    dependencies: {},
  };

  const summary = (tasks: IsolatedBuildTask[]) => tasks.map((task) => `${task.project}@${task.options.ref ?? '-'}`);

  it('finds every isolated-build target when the targets are not known', () => {
    const tasks = isolatedBuildTasks(graph, undefined);
    expect(summary(tasks)).toEqual(['analytics@main', 'analytics@prod', 'finance@-']);
    expect(tasks[1]).toEqual({
      project: 'analytics',
      target: 'build-prod',
      root: 'dbt/analytics',
      options: { ref: 'prod', profilesDir: 'profiles' },
    });
    expect(tasks[2].options).toEqual({});
  });

  it('keeps only the requested targets that use the executor', () => {
    expect(summary(isolatedBuildTasks(graph, ['isolated-build']))).toEqual(['analytics@main', 'finance@-']);
    expect(summary(isolatedBuildTasks(graph, ['build-prod', 'build']))).toEqual(['analytics@prod']);
    expect(isolatedBuildTasks(graph, ['lint', 'build'])).toEqual([]);
    expect(isolatedBuildTasks(graph, [])).toEqual([]);
  });

  it('keeps only the projects given, when they are given', () => {
    expect(summary(isolatedBuildTasks(graph, ['isolated-build'], undefined, ['finance']))).toEqual(['finance@-']);
    expect(summary(isolatedBuildTasks(graph, undefined, undefined, ['analytics', 'unknown']))).toEqual([
      'analytics@main',
      'analytics@prod',
    ]);
  });
});

describe('keyScope', () => {
  const graphWith = (target: TargetConfiguration): ProjectGraph => ({
    nodes: { analytics: { name: 'analytics', type: 'lib', data: { root: 'analytics', targets: { build: target } } } },
    dependencies: {},
  });
  const plain = graphWith({ executor: ISOLATED_BUILD_EXECUTOR });

  it('gives the projects and targets the command line names', () => {
    expect(keyScope(plain, { projects: ['analytics'], targets: ['build'] })).toEqual({
      projects: ['analytics'],
      targets: ['build'],
    });
  });

  it('gives every project when the command line names none, every build when it names no target', () => {
    expect(keyScope(plain, { targets: ['build'] }).projects).toBeUndefined();
    expect(keyScope(plain, { projects: ['analytics'] })).toEqual({});
    expect(keyScope(graphWith({ dependsOn: [] }), { projects: ['analytics'], targets: ['build'] }).projects).toEqual([
      'analytics',
    ]);
  });

  it('keys every isolated build of every project when a requested target depends on other tasks', () => {
    const dependent = graphWith({ executor: 'nx:run-commands', dependsOn: ['isolated-build'] });
    expect(keyScope(dependent, { projects: ['analytics'], targets: ['build'] })).toEqual({});
    expect(keyScope(dependent, { targets: ['build'] })).toEqual({});
    const dependentBuild = graphWith({ executor: ISOLATED_BUILD_EXECUTOR, dependsOn: ['^build'] });
    expect(keyScope(dependentBuild, { projects: ['analytics'], targets: ['build'] })).toEqual({});
  });
});

describe('setBuildKeys', () => {
  const PROFILES = profilesYaml('warehouse', { dev: DEV_POSTGRES });
  let repo: TempRepo;
  let first: string;
  let second: string;
  const env: NodeJS.ProcessEnv = { PATH: '' };

  beforeAll(() => {
    repo = makeTempRepo();
    const dbtProject = (name: string) => ({
      [`${name}/dbt_project.yml`]: `name: ${name}\nprofile: warehouse\n`,
      [`${name}/profiles.yml`]: PROFILES,
    });
    first = repo.commit('first', { '.gitignore': '.venv\n', ...dbtProject('analytics'), ...dbtProject('finance') });
    repo.git('branch', 'release');
    second = repo.commit('second', { 'analytics/models/a.sql': 'select 2\n' });
    writeFakeDbt(repo.root);
  });
  afterAll(() => repo.cleanup());

  const task = (project: string, ref?: string, target = 'isolated-build'): IsolatedBuildTask => ({
    project,
    target,
    root: project,
    options: ref === undefined ? {} : { ref },
  });
  const keyRequest = (project: string, commit: string, dbtTarget?: string) => ({
    workspaceRoot: repo.root,
    project,
    projectRoot: project,
    commit,
    profile: 'warehouse',
    dbtTarget,
    env,
    homeDir: homedir(),
  });
  const keyAt = (project: string, commit: string, dbtTarget?: string) =>
    buildKey(keyRequest(project, commit, dbtTarget));

  async function keysOf(tasks: IsolatedBuildTask[], ref?: string, dbtTarget?: string): Promise<NodeJS.ProcessEnv> {
    const result = { ...env };
    await setBuildKeys(repo.root, tasks, { ref, dbtTarget }, result);
    return result;
  }

  it("sets the key of HEAD's commit when no ref is given", async () => {
    const keys = await keysOf([task('analytics')]);
    expect(keys[buildKeyVariable('analytics', 'isolated-build')]).toBe(keyAt('analytics', second));
    expect(keyAt('analytics', second)).not.toBe(keyAt('analytics', first));
  });

  it("uses the target's ref option, and the command line's ref over it", async () => {
    expect((await keysOf([task('analytics', 'release')]))[buildKeyVariable('analytics', 'isolated-build')]).toBe(
      keyAt('analytics', first),
    );
    expect(
      (await keysOf([task('analytics', 'release')], 'main'))[buildKeyVariable('analytics', 'isolated-build')],
    ).toBe(keyAt('analytics', second));
  });

  it('sets a key that matches nothing for an unknown ref, and real keys for the other projects', async () => {
    const keys = await keysOf([task('analytics', 'no-such-branch'), task('finance')]);
    expect(keys[buildKeyVariable('analytics', 'isolated-build')]).toMatch(/^uncacheable-/);
    expect(keys[buildKeyVariable('finance', 'isolated-build')]).toBe(keyAt('finance', second));
  });

  it('sets nothing when there are no tasks', async () => {
    expect(await keysOf([])).toEqual(env);
  });

  it('sets a key that matches nothing outside a git repository', async () => {
    const elsewhere = makeTempDir();
    try {
      const result = { ...env };
      await setBuildKeys(elsewhere, [task('analytics')], {}, result);
      expect(result[buildKeyVariable('analytics', 'isolated-build')]).toMatch(/^uncacheable-/);
    } finally {
      removeDir(elsewhere);
    }
  });

  it('keys two isolated-build targets of one project at different refs each on its own commit', async () => {
    const keys = await keysOf([task('analytics', 'release', 'build-release'), task('analytics', 'main')]);
    expect(keys[buildKeyVariable('analytics', 'build-release')]).toBe(keyAt('analytics', first));
    expect(keys[buildKeyVariable('analytics', 'isolated-build')]).toBe(keyAt('analytics', second));
  });

  it('keys the dbt target asked for, from the command line over the options', async () => {
    const withTarget = (target: string): IsolatedBuildTask => ({ ...task('analytics'), options: { target } });
    expect((await keysOf([withTarget('dev')]))[buildKeyVariable('analytics', 'isolated-build')]).toBe(
      keyAt('analytics', second, 'dev'),
    );
    expect(
      (await keysOf([withTarget('dev')], undefined, 'prod'))[buildKeyVariable('analytics', 'isolated-build')],
    ).toBe(keyAt('analytics', second, 'prod'));
    expect(keyAt('analytics', second, 'prod')).not.toBe(keyAt('analytics', second, 'dev'));
  });

  it('keys the profiles folder and dbt given on the command line over the options, as the executor does', async () => {
    writeFiles(repo.root, { 'profiles/elsewhere/profiles.yml': PROFILES.replace('dev_me', 'dev_other') });
    const result = { ...env };
    const options = { profilesDir: 'analytics', dbtExecutable: '.venv/bin/dbt' };
    const choices = { profilesDir: 'profiles/elsewhere', dbtExecutable: `${repo.root}/.venv/bin/dbt` };
    await setBuildKeys(repo.root, [{ ...task('analytics'), options }], choices, result);
    expect(result[buildKeyVariable('analytics', 'isolated-build')]).toBe(
      buildKey({ ...keyRequest('analytics', second), ...choices }),
    );
    expect(buildKey({ ...keyRequest('analytics', second), ...choices })).not.toBe(keyAt('analytics', second));
  });

  it("makes a DuckDB file's token before keying, so the key is cacheable and the build's own", async () => {
    const duckdb = 'warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: w.duckdb\n';
    writeFiles(repo.root, { 'profiles/duckdb/profiles.yml': duckdb });
    const choices = { profilesDir: 'profiles/duckdb' };
    const result = { ...env };
    await setBuildKeys(repo.root, [task('analytics')], choices, result);
    const key = result[buildKeyVariable('analytics', 'isolated-build')];
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).toBe(buildKey({ ...keyRequest('analytics', second), ...choices }));
  });

  it("keys dbt's --exclude, from the command line over the options", async () => {
    const excluding = (exclude: string[]): IsolatedBuildTask => ({ ...task('analytics'), options: { exclude } });
    const keyOf = async (exclude: string[], fromCommandLine?: string[]) => {
      const result = { ...env };
      await setBuildKeys(repo.root, [excluding(exclude)], { exclude: fromCommandLine }, result);
      return result[buildKeyVariable('analytics', 'isolated-build')];
    };
    expect(await keyOf(['a'])).toBe(buildKey({ ...keyRequest('analytics', second), exclude: ['a'] }));
    expect(await keyOf(['a'], ['b', 'c'])).toBe(buildKey({ ...keyRequest('analytics', second), exclude: ['b', 'c'] }));
    expect(await keyOf(['a'])).not.toBe(keyAt('analytics', second));
  });
});
