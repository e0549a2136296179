import type { ProjectGraph, TargetConfiguration } from '@nx/devkit';
import { writeFakeDbt } from '../core/testing/fake-dbt';
import { makeTempRepo, type TempRepo } from '../core/testing/git-repo';
import { preTasksExecution } from './pre-tasks';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from '../contract';

const graph: ProjectGraph = { nodes: {}, dependencies: {} };
jest.mock('@nx/devkit', () => ({ ...jest.requireActual('@nx/devkit'), readCachedProjectGraph: () => graph }));

describe('preTasksExecution', () => {
  const PROJECTS = ['analytics', 'finance', 'marketing'];
  const PROFILES =
    'warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: localhost\n      dbname: warehouse\n      schema: dev_me\n';
  let repo: TempRepo;
  const saved = { ...process.env };

  beforeAll(() => {
    repo = makeTempRepo();
    const files: Record<string, string> = { '.gitignore': '.venv\n' };
    for (const name of PROJECTS) {
      files[`${name}/dbt_project.yml`] = `name: ${name}\nprofile: warehouse\n`;
      files[`${name}/profiles.yml`] = PROFILES;
    }
    repo.commit('projects', files);
    writeFakeDbt(repo.root);
  });
  afterAll(() => repo.cleanup());
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  });

  const useGraph = (build: TargetConfiguration) => {
    graph.nodes = Object.fromEntries(
      PROJECTS.map((name) => [
        name,
        { name, type: 'lib' as const, data: { root: name, targets: { 'isolated-build': build } } },
      ]),
    );
  };
  const keyed = async (...args: string[]) => {
    const context = { id: 'run-1', workspaceRoot: repo.root, nxJsonConfiguration: {}, argv: ['node', 'nx', ...args] };
    await preTasksExecution(undefined, context);
    return PROJECTS.filter((name) => process.env[buildKeyVariable(name, 'isolated-build')] !== undefined);
  };

  it('keys only the build nx run asks for, not every project that has the target', async () => {
    useGraph({ executor: ISOLATED_BUILD_EXECUTOR, options: {} });
    expect(await keyed('run', 'finance:isolated-build', '--ref=HEAD')).toEqual(['finance']);
    expect(process.env[buildKeyVariable('finance', 'isolated-build')]).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keys every project that has the target for run-many', async () => {
    useGraph({ executor: ISOLATED_BUILD_EXECUTOR, options: {} });
    expect(await keyed('run-many', '-t', 'isolated-build')).toEqual(PROJECTS);
  });

  it('keys every project when the requested target depends on other tasks, which only Nx resolves', async () => {
    useGraph({ executor: ISOLATED_BUILD_EXECUTOR, options: {}, dependsOn: ['^isolated-build'] });
    expect(await keyed('run', 'finance:isolated-build')).toEqual(PROJECTS);
  });
});
