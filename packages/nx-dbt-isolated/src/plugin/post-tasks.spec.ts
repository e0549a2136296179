import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCachedProjectGraph, type ProjectGraph, type TaskResult, type TaskResults } from '@nx/devkit';
import { stageArtifacts } from '../core/cache/staged-artifacts';
import { buildPaths, stagingDir } from '../core/workspace/dot-layout';
import { buildRecord } from '../core/testing/build-record';
import { makeTempDir, removeDir, writeFiles } from '../core/testing/git-repo';
import { postTasksExecution } from './post-tasks';
import { claimRestored } from '../core/warehouse/claims';
import { UserError } from '../core/workspace/errors';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from '../contract';

// The warehouse side of a restore is warehouse/claims.ts's (warehouse/claims.warehouse.spec.ts, e2e/tests/clones.e2e.ts).
jest.mock('../core/warehouse/claims', () => ({ claimRestored: jest.fn(async () => undefined) }));
const claim = jest.mocked(claimRestored);

jest.mock('@nx/devkit', () => ({
  ...jest.requireActual('@nx/devkit'),
  readCachedProjectGraph: jest.fn(),
}));

const graph: ProjectGraph = {
  nodes: {
    analytics: {
      name: 'analytics',
      type: 'lib',
      data: { root: 'analytics', targets: { 'isolated-build': { executor: ISOLATED_BUILD_EXECUTOR } } },
    },
    web: { name: 'web', type: 'app', data: { root: 'apps/web', targets: { build: { executor: '@nx/vite:build' } } } },
  },
  dependencies: {},
};

const build = buildRecord();

/** A task's result as Nx hands it to the hook: the task names its project's root. */
function result(project: string, target: string, status: TaskResult['status']): TaskResult {
  const id = `${project}:${target}`;
  const projectRoot = graph.nodes[project].data.root;
  return {
    task: { id, target: { project, target }, projectRoot, overrides: {}, outputs: [], cache: true },
    status,
    code: 0,
  };
}

describe('postTasksExecution', () => {
  let workspaceRoot: string;
  let installed: string;

  beforeEach(() => {
    workspaceRoot = makeTempDir();
    // Set by preTasksExecution in the same process before Nx hashed the task.
    process.env[buildKeyVariable('analytics', 'isolated-build')] = 'key1';
    process.env[buildKeyVariable('apps/web', 'build')] = 'key1';
    jest.mocked(readCachedProjectGraph).mockReturnValue(graph);
    // What Nx restores for a cache hit: the staging folder a build of analytics left.
    const paths = buildPaths(workspaceRoot, build.buildId, 'analytics', 'dev');
    writeFiles(paths.targetPath, { 'manifest.json': '{"nodes": {}}' });
    stageArtifacts(workspaceRoot, paths, build, 'key1');
    removeDir(join(workspaceRoot, '.dot', build.buildId));
    installed = join(paths.targetPath, 'manifest.json');
  });
  afterEach(() => {
    delete process.env[buildKeyVariable('analytics', 'isolated-build')];
    delete process.env[buildKeyVariable('apps/web', 'build')];
    jest.mocked(readCachedProjectGraph).mockReset();
    removeDir(workspaceRoot);
  });

  const run = (...results: TaskResult[]) => {
    const taskResults: TaskResults = Object.fromEntries(results.map((one) => [one.task.id, one]));
    return postTasksExecution(undefined, {
      id: 'run-1',
      workspaceRoot,
      nxJsonConfiguration: {},
      argv: [],
      startTime: 0,
      endTime: 0,
      taskResults,
    });
  };

  it.each(['local-cache', 'local-cache-kept-existing', 'remote-cache'] as const)(
    "puts an isolated build's artifacts restored from the %s in the commit's folder",
    async (status) => {
      await run(result('analytics', 'isolated-build', status), result('web', 'build', 'success'));
      expect(readFileSync(installed, 'utf8')).toBe('{"nodes": {}}');
      const record = JSON.parse(readFileSync(join(installed, '..', '..', 'build.json'), 'utf8'));
      expect(record.restoredFromCacheAt).toEqual(expect.any(String));
    },
  );

  it('installs nothing for an isolated build that ran: it wrote its own folder', async () => {
    await run(result('analytics', 'isolated-build', 'success'), result('web', 'build', 'remote-cache'));
    expect(existsSync(installed)).toBe(false);
    expect(existsSync(stagingDir(workspaceRoot, 'analytics'))).toBe(true);
  });

  it('ignores cache hits of targets with another executor or not in the graph', async () => {
    const web = buildPaths(workspaceRoot, build.buildId, 'web', 'dev');
    writeFiles(web.targetPath, { 'manifest.json': '{}' });
    stageArtifacts(workspaceRoot, web, { ...build, project: 'web' }, 'key1');
    removeDir(join(workspaceRoot, '.dot', build.buildId));

    await run(result('web', 'build', 'local-cache'), result('analytics', 'lint', 'local-cache'));
    expect(existsSync(web.targetPath)).toBe(false);
    expect(existsSync(installed)).toBe(false);
  });

  it('installs nothing without the key of the task: the hook did not key it', async () => {
    delete process.env[buildKeyVariable('analytics', 'isolated-build')];
    await run(result('analytics', 'isolated-build', 'local-cache'));
    expect(existsSync(installed)).toBe(false);
  });

  it('claims a restored build with the options of its target, and fails the command with the problem of the claim', async () => {
    const withOptions = structuredClone(graph);
    withOptions.nodes.analytics.data.targets!['isolated-build'].options = { profilesDir: 'config/dbt' };
    jest.mocked(readCachedProjectGraph).mockReturnValue(withOptions);
    claim.mockRejectedValueOnce(
      new UserError('Nx restored the build of analytics at abcd12340000 from its cache, but…'),
    );

    await expect(run(result('analytics', 'isolated-build', 'local-cache'))).rejects.toThrow(
      /^nx-dbt-isolated: Nx restored the build of analytics at abcd12340000 from its cache, but…$/,
    );
    expect(claim).toHaveBeenCalledWith(
      expect.objectContaining({
        workspaceRoot,
        projectRoot: 'analytics',
        profilesDir: 'config/dbt',
        paths: expect.objectContaining({ buildRecord: join(installed, '..', '..', 'build.json') }),
      }),
    );
  });

  it('removes the folder Nx restored for a hit once the build is installed: the next entry holds its own build only', async () => {
    await run(result('analytics', 'isolated-build', 'local-cache'));
    expect(existsSync(installed)).toBe(true);
    expect(existsSync(join(stagingDir(workspaceRoot, 'analytics'), 'key1'))).toBe(false);
  });

  it('removes what a build of this run staged, and leaves what another run staged', async () => {
    const paths = buildPaths(workspaceRoot, build.buildId, 'analytics', 'dev');
    writeFiles(paths.targetPath, { 'manifest.json': '{}' });
    const folder = join(stagingDir(workspaceRoot, 'analytics'), 'key1');
    stageArtifacts(workspaceRoot, paths, build, 'key1', 'run-2');
    await run(result('analytics', 'isolated-build', 'success'));
    expect(existsSync(folder)).toBe(true);

    stageArtifacts(workspaceRoot, paths, build, 'key1', 'run-1');
    await run(result('analytics', 'isolated-build', 'success'));
    expect(existsSync(folder)).toBe(false);
  });

  it('does not read the project graph when nothing came from the cache', async () => {
    await run(result('analytics', 'isolated-build', 'success'), result('web', 'build', 'failure'));
    expect(readCachedProjectGraph).not.toHaveBeenCalled();
  });
});
