import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { AggregateCreateNodesError, type CreateNodesContextV2 } from '@nx/devkit';
import { workspaceDataDirectory } from '@nx/devkit/internal';
import { parseDbtProject } from '../core/dbt/project';
import { makeTempDir, removeDir, writeFiles } from '../core/testing/git-repo';
import { createNodes, dbtProjectNodes as nodesOfProject, normalizeOptions } from './nodes';
import { buildKeyVariable } from '../contract';

// Nx keeps the plugin cache in the real workspace's .nx folder: the test gets a folder of its own.
jest.mock('@nx/devkit/internal', () => {
  const actual = jest.requireActual('@nx/devkit/internal');
  const { mkdtempSync } = jest.requireActual('node:fs');
  const { tmpdir } = jest.requireActual('node:os');
  const { join: joinPath } = jest.requireActual('node:path');
  return {
    ...actual,
    workspaceDataDirectory: mkdtempSync(joinPath(tmpdir(), 'nx-dbt-isolated-workspace-data-')),
  };
});
// Counted, to see which dbt_project.yml files the cache spares a parse.
jest.mock('../core/dbt/project', () => {
  const actual = jest.requireActual('../core/dbt/project');
  return { ...actual, parseDbtProject: jest.fn(actual.parseDbtProject) };
});

const parses = jest.mocked(parseDbtProject);

/** The nodes of one dbt_project.yml's text, as createNodes makes them for a project alone in its workspace. */
const dbtProjectNodes = (
  file: string,
  text: string,
  ...rest: Parameters<typeof nodesOfProject> extends [unknown, unknown, ...infer R] ? R : never
) => nodesOfProject(file, parseDbtProject(text, file), ...rest);
const [glob, createNodesFn] = createNodes;

afterAll(() => removeDir(workspaceDataDirectory));

describe('dbtProjectNodes', () => {
  const analytics = "name: jaffle_shop\nprofile: duck\nversion: '1.0'\n";

  it('makes a project named after the dbt project, rooted at its folder, with isolated build and clean targets', () => {
    const result = dbtProjectNodes('warehouse/analytics/dbt_project.yml', analytics, normalizeOptions(undefined));
    expect(Object.keys(result.projects ?? {})).toEqual(['warehouse/analytics']);
    const project = result.projects?.['warehouse/analytics'];
    expect(project?.name).toBe('jaffle_shop');
    expect(project?.root).toBe('warehouse/analytics');
    expect(project?.metadata?.technologies).toEqual(['dbt']);
    expect(Object.keys(project?.targets ?? {})).toEqual(['isolated-build', 'clean', 'diff', 'promote', 'dbt', 'docs']);
    expect(project?.targets?.['clean']?.metadata?.help).toEqual({
      command: 'npx nx run jaffle_shop:clean --help',
      example: { options: { keep: 5, dryRun: true } },
    });
    for (const name of ['diff', 'promote', 'dbt', 'docs']) {
      expect(project?.targets?.[name]).toMatchObject({
        executor: `nx-dbt-isolated:${name}`,
        cache: false,
        options: { buildTarget: 'isolated-build' },
      });
    }
    const target = project?.targets?.['isolated-build'];
    expect(target?.executor).toBe('nx-dbt-isolated:isolated-build');
    expect(target?.cache).toBe(true);
    expect(target?.inputs).toEqual([
      { env: buildKeyVariable('warehouse/analytics', 'isolated-build') },
      { env: 'NX_DBT_ISOLATED_TARGET' },
      { env: 'DBT_TARGET' },
      { externalDependencies: [] },
    ]);
    expect(target?.outputs).toEqual(['{workspaceRoot}/.dot/cache/{projectName}']);
    expect(target?.metadata?.technologies).toEqual(['dbt']);
    expect(target?.metadata?.description).toContain('nx run jaffle_shop:isolated-build --ref=main');
    const clean = project?.targets?.clean;
    expect(clean?.executor).toBe('nx-dbt-isolated:clean');
    expect(clean?.cache).toBe(false);
    expect(clean?.metadata?.description).toContain('nx run jaffle_shop:clean --keep=5 --dryRun');
  });

  it('names the targets as configured', () => {
    const names = { isolatedBuildTargetName: 'ib', cleanTargetName: 'dbt-clean', diffTargetName: 'dbt-diff' };
    const more = { promoteTargetName: 'publish', dbtCommandTargetName: 'run-dbt', docsTargetName: 'dbt-docs' };
    const options = normalizeOptions({ ...names, ...more }, {}, '23.2.1');
    expect(options).toEqual({ ...names, ...more, taskLevelAffected: false });
    const result = dbtProjectNodes('warehouse/analytics/dbt_project.yml', analytics, options);
    const targets = result.projects?.['warehouse/analytics']?.targets ?? {};
    expect(Object.keys(targets)).toEqual(['ib', 'dbt-clean', 'dbt-diff', 'publish', 'run-dbt', 'dbt-docs']);
    // Diff, promote, dbt and docs build a missing commit with the build target, whatever its name.
    for (const name of ['publish', 'run-dbt', 'dbt-docs']) expect(targets[name].options).toEqual({ buildTarget: 'ib' });
    expect(targets.ib.executor).toBe('nx-dbt-isolated:isolated-build');
    expect(targets['dbt-clean'].executor).toBe('nx-dbt-isolated:clean');
  });

  it('gives a dbt package without a profile no build target, since dbt cannot build it alone', () => {
    const text = "name: shared_macros\nversion: '1.0'\n";
    const project = dbtProjectNodes('shared/dbt_project.yml', text, normalizeOptions({})).projects?.shared;
    expect(project?.name).toBe('shared_macros');
    expect(project?.targets).toEqual({});
    expect(project?.metadata?.description).toContain('no profile');
  });
});

describe('createNodes', () => {
  let workspaceRoot: string;
  let context: CreateNodesContextV2;

  beforeEach(() => {
    workspaceRoot = makeTempDir();
    context = { workspaceRoot, nxJsonConfiguration: {} };
    const project = (name: string) => `name: ${name}\nprofile: ${name}\n`;
    writeFiles(workspaceRoot, {
      'analytics/dbt_project.yml': project('analytics'),
      '.dot/abc12345/worktree/analytics/dbt_project.yml': project('analytics'),
      'analytics/dbt_packages/x/dbt_project.yml': project('x'),
      'node_modules/p/dbt_project.yml': project('p'),
    });
    parses.mockClear();
    rmSync(workspaceDataDirectory, { recursive: true, force: true });
  });
  afterEach(() => removeDir(workspaceRoot));

  const files = [
    'analytics/dbt_project.yml',
    '.dot/abc12345/worktree/analytics/dbt_project.yml',
    'analytics/dbt_packages/x/dbt_project.yml',
    'node_modules/p/dbt_project.yml',
  ];

  it('matches every dbt_project.yml', () => {
    expect(glob).toBe('**/dbt_project.yml');
  });

  it('makes a project of the user’s dbt project only, not of checkouts, packages or node_modules', async () => {
    const results = await createNodesFn(files, {}, context);
    expect(results.map(([file]) => file)).toEqual(['analytics/dbt_project.yml']);
    const projects = results[0][1].projects ?? {};
    expect(Object.keys(projects)).toEqual(['analytics']);
    expect(projects.analytics.name).toBe('analytics');
    expect(Object.keys(projects.analytics.targets ?? {})).toEqual([
      'isolated-build',
      'clean',
      'diff',
      'promote',
      'dbt',
      'docs',
    ]);
  });

  it('uses the configured target name', async () => {
    const results = await createNodesFn(['analytics/dbt_project.yml'], { isolatedBuildTargetName: 'ib' }, context);
    expect(Object.keys(results[0][1].projects?.analytics.targets ?? {})).toEqual([
      'ib',
      'clean',
      'diff',
      'promote',
      'dbt',
      'docs',
    ]);
  });

  it('serves a project from the cache while its dbt_project.yml is unchanged, and parses it again when it changes', async () => {
    const first = await createNodesFn(files, {}, context);
    const second = await createNodesFn(files, {}, context);
    expect(second).toEqual(first);
    expect(parses).toHaveBeenCalledTimes(1);

    writeFiles(workspaceRoot, { 'analytics/dbt_project.yml': 'name: analytics_v2\nprofile: analytics\n' });
    const changed = await createNodesFn(files, {}, context);
    expect(changed[0][1].projects?.analytics.name).toBe('analytics_v2');
    expect(parses).toHaveBeenCalledTimes(2);
  });

  it("gives every target a configuration per dbt target of the project's profile, read again when profiles.yml changes", async () => {
    const profiles = (targets: string[]) =>
      `analytics:\n  target: dev\n  outputs:\n${targets.map((t) => `    ${t}:\n      type: duckdb\n`).join('')}other:\n  outputs:\n    x:\n      type: duckdb\n`;
    writeFiles(workspaceRoot, { 'analytics/profiles.yml': profiles(['dev', 'prod']) });
    const targets = async () => (await createNodesFn(files, {}, context))[0][1].projects?.analytics.targets ?? {};
    for (const target of Object.values(await targets())) {
      expect(target.configurations).toEqual({ dev: { target: 'dev' }, prod: { target: 'prod' } });
    }
    writeFiles(workspaceRoot, { 'analytics/profiles.yml': profiles(['dev', 'ci']) });
    expect((await targets())['isolated-build'].configurations).toEqual({
      dev: { target: 'dev' },
      ci: { target: 'ci' },
    });
  });

  it('takes the dbt targets of the plugin options over profiles.yml, and makes none without either', async () => {
    const targets = async (options = {}) =>
      (await createNodesFn(files, options, context))[0][1].projects?.analytics.targets ?? {};
    expect((await targets())['isolated-build'].configurations).toBeUndefined();
    writeFiles(workspaceRoot, { 'analytics/profiles.yml': 'analytics:\n  outputs:\n    dev:\n      type: duckdb\n' });
    expect((await targets({ dbtTargets: ['prod'] }))['promote'].configurations).toEqual({ prod: { target: 'prod' } });
    writeFiles(workspaceRoot, { 'analytics/profiles.yml': 'analytics: [broken' });
    expect((await targets())['isolated-build'].configurations).toBeUndefined();
  });

  it('keys the cache on the file too: two projects with the same text are two projects', async () => {
    writeFiles(workspaceRoot, { 'copy/dbt_project.yml': 'name: analytics\nprofile: analytics\n' });
    const results = await createNodesFn(['analytics/dbt_project.yml', 'copy/dbt_project.yml'], {}, context);
    expect(results.map(([, result]) => Object.keys(result.projects ?? {}))).toEqual([['analytics'], ['copy']]);
  });

  it('refuses a dbt_project.yml without a name, naming the file, and infers the others', async () => {
    writeFiles(workspaceRoot, { 'nameless/dbt_project.yml': "version: '1.0'\n" });
    const error = await Promise.resolve(createNodesFn([...files, 'nameless/dbt_project.yml'], {}, context)).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(AggregateCreateNodesError);
    const { errors, partialResults } = error as AggregateCreateNodesError;
    expect(errors.map(([file, failure]) => [file, failure.message])).toEqual([
      ['nameless/dbt_project.yml', expect.stringMatching(/nameless\/dbt_project\.yml has no 'name:'/)],
    ]);
    expect(partialResults.map(([file]) => file)).toEqual(['analytics/dbt_project.yml']);
  });

  it('names a dbt_project.yml it cannot read', async () => {
    rmSync(join(workspaceRoot, 'analytics/dbt_project.yml'));
    const error = await Promise.resolve(createNodesFn(files, {}, context)).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(AggregateCreateNodesError);
    const failures = (error as AggregateCreateNodesError).errors;
    expect(failures.map(([file]) => file)).toEqual(['analytics/dbt_project.yml']);
    expect(failures[0][1].message).toContain('ENOENT');
  });
});

describe('normalizeOptions', () => {
  it("adds the project's files and its dependencies' to the inputs where Nx 24 selects affected tasks by them", () => {
    expect(normalizeOptions({}, {}, '24.0.6').taskLevelAffected).toBe(true);
    expect(normalizeOptions({}, { affected: { legacy: true } }, '24.0.6').taskLevelAffected).toBe(false);
    expect(normalizeOptions({}, {}, '23.2.1').taskLevelAffected).toBe(false);
  });

  it('puts them first in the inputs of the target', () => {
    const inputs = (version: string) =>
      dbtProjectNodes('a/dbt_project.yml', 'name: a\nprofile: a\n', normalizeOptions({}, {}, version)).projects?.a
        .targets?.['isolated-build'].inputs;
    expect(inputs('24.0.6')?.slice(0, 3)).toEqual([
      '{projectRoot}/**/*',
      '!{projectRoot}/profiles.yml',
      '^{projectRoot}/**/*',
    ]);
    expect(inputs('23.2.1')).not.toContain('{projectRoot}/**/*');
    expect(inputs('23.2.1')).not.toContain('^{projectRoot}/**/*');
  });
});
