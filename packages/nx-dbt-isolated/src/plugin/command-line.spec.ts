import type { ProjectGraph } from '@nx/devkit';
import { requestedTasks } from './command-line';

const argv = (...args: string[]) => ['/usr/bin/node', '/ws/node_modules/.bin/nx', ...args];

describe('requestedTasks', () => {
  it.each([
    [['run', 'analytics:isolated-build', '--target=ci'], 'ci'],
    [['run', 'analytics:isolated-build', '--target', 'ci', '--ref=main'], 'ci'],
    [['run', 'analytics:isolated-build:prod', '-t', 'prod'], 'prod'],
    [['run', 'analytics:isolated-build', '-t=prod'], 'prod'],
    [['analytics:isolated-build', '--target=ci'], 'ci'],
  ])('reads the dbt target of nx %j', (args, dbtTarget) => {
    expect(requestedTasks(argv(...args))).toMatchObject({ targets: ['isolated-build'], dbtTarget });
  });

  it.each([
    [['run-many', '-t', 'isolated-build']],
    [['affected', '--target', 'isolated-build']],
    [['run-many', '--targets=isolated-build']],
  ])('reads %j as the Nx target, never the dbt target', (args) => {
    expect(requestedTasks(argv(...args))).toEqual({ targets: ['isolated-build'], ref: undefined, deferTo: undefined });
  });

  it('reads several targets and the ref of run-many', () => {
    expect(requestedTasks(argv('run-many', '-t', 'lint,isolated-build', '-t', 'test', '--ref', 'v1.2'))).toEqual({
      targets: ['lint', 'isolated-build', 'test'],
      ref: 'v1.2',
      deferTo: undefined,
    });
  });

  it('reads the ref of nx run in both flag forms', () => {
    expect(requestedTasks(argv('run', 'analytics:isolated-build', '--ref=main')).ref).toBe('main');
    expect(requestedTasks(argv('run', 'analytics:isolated-build', '--ref', 'HEAD~2')).ref).toBe('HEAD~2');
  });

  it('reads the base of a slim build in both flag forms, with nx run and with affected', () => {
    expect(requestedTasks(argv('run', 'analytics:isolated-build', '--deferTo=main')).deferTo).toBe('main');
    expect(requestedTasks(argv('affected', '-t', 'isolated-build', '--deferTo', 'origin/main')).deferTo).toBe(
      'origin/main',
    );
    expect(requestedTasks(argv('run', 'analytics:isolated-build', '--defer-to=v1')).deferTo).toBe('v1');
  });

  it('reads the options that reach the key in camelCase and kebab-case, in both flag forms', () => {
    const run = (...args: string[]) => requestedTasks(argv('run', 'analytics:isolated-build', ...args));
    expect(run('--profilesDir=profiles', '--dbtExecutable', '/venv/bin/dbt')).toMatchObject({
      profilesDir: 'profiles',
      dbtExecutable: '/venv/bin/dbt',
    });
    expect(run('--profiles-dir', 'p', '--dbt-executable=d')).toMatchObject({ profilesDir: 'p', dbtExecutable: 'd' });
    expect(requestedTasks(argv('run-many', '-t', 'isolated-build', '--profilesDir=p')).profilesDir).toBe('p');
  });

  it("reads each --exclude of nx run, which Nx takes for itself, as dbt's; never run-many's projects", () => {
    expect(requestedTasks(argv('run', 'analytics:isolated-build', '--exclude=stg_a')).exclude).toEqual(['stg_a']);
    expect(requestedTasks(argv('analytics:isolated-build', '--exclude', 'a', '--exclude=tag:b,c')).exclude).toEqual([
      'a',
      'tag:b,c',
    ]);
    expect(requestedTasks(argv('run', 'analytics:isolated-build')).exclude).toBeUndefined();
    expect(requestedTasks(argv('run-many', '-t', 'isolated-build', '--exclude=finance')).exclude).toBeUndefined();
  });

  it('reads the project of nx run, and none for run-many and affected', () => {
    expect(requestedTasks(argv('run', 'analytics:isolated-build:prod')).projects).toEqual(['analytics']);
    expect(requestedTasks(argv('finance:isolated-build', '--ref=main')).projects).toEqual(['finance']);
    expect(requestedTasks(argv('run-many', '-t', 'isolated-build', '-p', 'analytics')).projects).toBeUndefined();
    expect(requestedTasks(argv('affected', '-t', 'isolated-build')).projects).toBeUndefined();
  });

  describe('with project names that hold colons, as Nx splits them', () => {
    const node = (name: string, configurations?: Record<string, object>) => ({
      name,
      type: 'lib' as const,
      data: { root: name.replace(/:/g, '-'), targets: { 'isolated-build': { configurations } } },
    });
    const graph: ProjectGraph = {
      nodes: { my: node('my'), 'my:proj': node('my:proj', { ci: {} }), analytics: node('analytics') },
      dependencies: {},
    };
    const split = (specifier: string) => {
      const { projects, targets, configuration } = requestedTasks(argv('run', specifier), graph);
      return { projects, targets, configuration };
    };

    it.each([
      ['my:proj:isolated-build', 'my:proj', undefined],
      ['my:proj:isolated-build:ci', 'my:proj', 'ci'],
      ['my:isolated-build', 'my', undefined],
      // A configuration or a project the graph does not know: at the colons, as before.
      ['analytics:isolated-build:prod', 'analytics', 'prod'],
      ['other:isolated-build', 'other', undefined],
    ])('reads %s as project %s, target isolated-build, configuration %s', (specifier, project, configuration) => {
      expect(split(specifier)).toEqual({ projects: [project], targets: ['isolated-build'], configuration });
    });
  });

  it('does not claim to know the targets of a command line it does not understand', () => {
    expect(requestedTasks(argv('run', '--project', 'analytics', '--target', 'isolated-build')).targets).toBeUndefined();
    expect(requestedTasks(argv('show', 'projects')).targets).toBeUndefined();
  });
});
