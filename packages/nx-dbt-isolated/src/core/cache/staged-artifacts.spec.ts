import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { CACHED_ARTIFACTS, installStagedArtifacts, removeStaged, stageArtifacts } from './staged-artifacts';
import { buildPaths, locksDir, stagingDir } from '../workspace/dot-layout';
import { withLock } from '../workspace/lock';
import { buildLockName, readBuildRecord, workspaceId, writeBuildRecord, type BuildRecord } from '../build/records';
import { buildRecord } from '../testing/build-record';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';

// statSync is wrapped so that one test can make a folder vanish just before it is looked at.
jest.mock('node:fs', () => {
  const actual = jest.requireActual('node:fs');
  return { ...actual, statSync: jest.fn(actual.statSync) };
});
const stat = jest.mocked(statSync);
const realStat = jest.requireActual<typeof import('node:fs')>('node:fs').statSync;

const record = buildRecord;

describe('stageArtifacts and installStagedArtifacts', () => {
  let workspaceRoot: string;
  beforeEach(() => {
    workspaceRoot = makeTempDir();
  });
  afterEach(() => {
    stat.mockImplementation(realStat);
    removeDir(workspaceRoot);
  });

  const staged = (key: string) => join(stagingDir(workspaceRoot, 'analytics'), key);
  const filesIn = (dir: string) => readdirSync(dir, { recursive: true }).map(String).sort();

  /** Writes a build's target folder, as dbt leaves it, and returns the build's paths. */
  function dbtOutput(build: BuildRecord, files: string[]) {
    const paths = buildPaths(workspaceRoot, build.buildId, build.project, build.target);
    writeFiles(paths.targetPath, Object.fromEntries(files.map((file) => [file, `${file} of ${build.commit}`])));
    return paths;
  }

  it('stages the cached artifacts that exist and the record, under .dot/cache/<project>/<key>', () => {
    const build = record();
    const paths = dbtOutput(build, [
      'manifest.json',
      'run_results.json',
      'partial_parse.msgpack',
      'compiled/analytics/models/a.sql',
    ]);
    stageArtifacts(workspaceRoot, paths, build, 'key1');

    expect(staged('key1')).toBe(join(workspaceRoot, '.dot', 'cache', 'analytics', 'key1'));
    expect(filesIn(staged('key1'))).toEqual([
      'build.json',
      'staged-by.json',
      'target',
      'target/manifest.json',
      'target/run_results.json',
    ]);
    expect(CACHED_ARTIFACTS).not.toContain('partial_parse.msgpack');
    expect(readFileSync(join(staged('key1'), 'target/manifest.json'), 'utf8')).toBe(
      `manifest.json of ${record().commit}`,
    );
    expect(JSON.parse(readFileSync(join(staged('key1'), 'build.json'), 'utf8'))).toEqual(build);
  });

  it('replaces an earlier staging of the same key entirely', () => {
    const build = record();
    stageArtifacts(workspaceRoot, dbtOutput(build, ['manifest.json', 'catalog.json']), build, 'key1');
    const paths = buildPaths(workspaceRoot, build.buildId, build.project, build.target);
    removeDir(paths.targetPath);
    dbtOutput(build, ['run_results.json']);
    stageArtifacts(workspaceRoot, paths, { ...build, command: 'run' }, 'key1');

    expect(filesIn(staged('key1'))).toEqual(['build.json', 'staged-by.json', 'target', 'target/run_results.json']);
    expect(JSON.parse(readFileSync(join(staged('key1'), 'build.json'), 'utf8')).command).toBe('run');
  });

  it("keeps another key's recent staging and removes one older than ten minutes", () => {
    const build = record();
    const paths = dbtOutput(build, ['manifest.json']);
    stageArtifacts(workspaceRoot, paths, build, 'recent');
    stageArtifacts(workspaceRoot, paths, build, 'old');
    const longAgo = new Date(Date.now() - 11 * 60_000);
    utimesSync(staged('old'), longAgo, longAgo);

    stageArtifacts(workspaceRoot, paths, build, 'key1');
    expect(readdirSync(stagingDir(workspaceRoot, 'analytics')).sort()).toEqual(['key1', 'recent']);
  });

  // Two builds finishing together: the other one renames its `<key>.<pid>.tmp` folder between
  // this build's readdir and its stat of that folder.
  it("does not fail when another build's temporary folder goes away while it cleans up", () => {
    const build = record();
    const paths = dbtOutput(build, ['manifest.json']);
    writeFiles(stagingDir(workspaceRoot, 'analytics'), { 'other.999.tmp/build.json': '{}' });
    stat.mockImplementation(((path: string, options?: object) => {
      if (path.endsWith('.tmp')) removeDir(path);
      return realStat(path, options);
    }) as typeof statSync);

    expect(() => stageArtifacts(workspaceRoot, paths, build, 'key1')).not.toThrow();
    expect(existsSync(join(staged('key1'), 'target/manifest.json'))).toBe(true);
  });

  it("installs the build staged under the key in its commit's folder, recording that it came from the cache", async () => {
    const first = record();
    stageArtifacts(workspaceRoot, dbtOutput(first, ['manifest.json', 'run_results.json']), first, 'key1');
    removeDir(join(workspaceRoot, '.dot', first.buildId));

    const before = Date.now();
    const installed = await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build');
    const firstPaths = buildPaths(workspaceRoot, 'abcd1234', 'analytics', 'dev');
    expect(installed?.buildDir).toBe(firstPaths.buildDir);
    expect(filesIn(firstPaths.targetPath)).toEqual(['manifest.json', 'run_results.json']);
    const restored = JSON.parse(readFileSync(firstPaths.buildRecord, 'utf8'));
    expect(restored).toEqual({ ...first, restoredFromCacheAt: expect.any(String) });
    expect(Date.parse(restored.restoredFromCacheAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('leaves alone another build that shares the cache entry: a clean may have removed it since', async () => {
    const first = record();
    const second = record({ commit: 'ef567890'.padEnd(40, '1'), buildId: 'ef567890', target: 'prod' });
    stageArtifacts(workspaceRoot, dbtOutput(first, ['manifest.json']), first, 'key1');
    stageArtifacts(workspaceRoot, dbtOutput(second, ['manifest.json']), second, 'key2');
    removeDir(join(workspaceRoot, '.dot', first.buildId));
    removeDir(join(workspaceRoot, '.dot', second.buildId));

    await installStagedArtifacts(workspaceRoot, 'analytics', 'key2', 'isolated-build');
    expect(readFileSync(buildPaths(workspaceRoot, 'ef567890', 'analytics', 'prod').buildRecord, 'utf8')).toContain(
      second.commit,
    );
    expect(existsSync(join(workspaceRoot, '.dot', first.buildId))).toBe(false);
  });

  it('never replaces a succeeded record this workspace wrote, even with a build staged later by another workspace', async () => {
    const here = workspaceId(workspaceRoot);
    const own = record({ builtBy: here, status: 'succeeded', startedAt: '2026-01-01T00:00:00.000Z' });
    const paths = dbtOutput(own, ['manifest.json']);
    writeBuildRecord(paths.buildRecord, own);
    const theirs = record({ builtBy: 'other-workspace', startedAt: '2026-01-02T00:00:00.000Z' });
    stageArtifacts(workspaceRoot, dbtOutput(record({ buildId: 'elsewhere' }), ['manifest.json']), theirs, 'key1');

    expect(await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build')).toBeUndefined();
    expect(readBuildRecord(paths.buildRecord)).toEqual(own);
  });

  it("replaces an older record restored from another workspace's build, keeping the claim of the same build", async () => {
    const restored = record({ builtBy: 'other-workspace', restoredFromCacheAt: '2026-01-03T00:00:00.000Z' });
    const paths = dbtOutput(restored, ['manifest.json']);
    writeBuildRecord(paths.buildRecord, { ...restored, claimedAt: '2026-01-03T00:00:01.000Z' });
    stageArtifacts(workspaceRoot, paths, record({ builtBy: 'other-workspace' }), 'key1');

    expect((await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build'))?.buildRecord).toBe(
      paths.buildRecord,
    );
    expect(readBuildRecord(paths.buildRecord)).toMatchObject({ claimedAt: '2026-01-03T00:00:01.000Z' });

    const later = record({ builtBy: 'third-workspace', startedAt: '2026-01-04T00:00:00.000Z' });
    stageArtifacts(workspaceRoot, paths, later, 'key2');
    await installStagedArtifacts(workspaceRoot, 'analytics', 'key2', 'isolated-build');
    expect(readBuildRecord(paths.buildRecord)).toMatchObject({ builtBy: 'third-workspace' });
    expect(readBuildRecord(paths.buildRecord)?.claimedAt).toBeUndefined();
  });

  it.each(['failed', 'interrupted', 'running'] as const)(
    'replaces a %s record this workspace wrote (no live build holds its lock) with the succeeded build of the hit',
    async (status) => {
      const own = record({ builtBy: workspaceId(workspaceRoot), status, startedAt: '2026-01-02T00:00:00.000Z' });
      const paths = dbtOutput(own, ['manifest.json']);
      writeBuildRecord(paths.buildRecord, own);
      const succeeded = record({ builtBy: workspaceId(workspaceRoot), startedAt: '2026-01-01T00:00:00.000Z' });
      stageArtifacts(workspaceRoot, paths, succeeded, 'key1');

      expect((await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build'))?.buildRecord).toBe(
        paths.buildRecord,
      );
      expect(readBuildRecord(paths.buildRecord)).toMatchObject({ status: 'succeeded', startedAt: succeeded.startedAt });
    },
  );

  it.each([
    [
      'a slim build (--deferTo)',
      { deferredTo: { commit: 'f'.repeat(40), ref: 'v1', schema: 'analytics_ffffffff' } },
      '--deferTo',
    ],
    ['a build with --vars', { selection: { vars: '{"x": 1}' } }, '--vars'],
  ])(
    'refuses to restore over %s that failed after writing into the schema, and says how to build it again',
    async (_case, written, flag) => {
      const own = record({ builtBy: workspaceId(workspaceRoot), status: 'failed', ...written });
      const paths = dbtOutput(own, ['manifest.json']);
      writeBuildRecord(paths.buildRecord, own);
      stageArtifacts(workspaceRoot, paths, record({ builtBy: workspaceId(workspaceRoot) }), 'key1');

      await expect(installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build')).rejects.toThrow(
        `Nx restored the build of analytics at ${own.commit.slice(0, 12)} from its cache, but a build here with ${flag} failed after writing into its schema, which no longer holds what the cached build made: build it again with nx run analytics:isolated-build --ref=${own.commit.slice(0, 12)} --skip-nx-cache.`,
      );
      expect(readBuildRecord(paths.buildRecord)).toEqual(own);
    },
  );

  it('restores over a succeeded record whose artifacts clean --schemas=false removed, keeping that this workspace built it', async () => {
    const here = workspaceId(workspaceRoot);
    const own = record({ builtBy: here, filesRemovedAt: '2026-01-03T00:00:00.000Z' });
    const paths = buildPaths(workspaceRoot, own.buildId, own.project, own.target);
    writeBuildRecord(paths.buildRecord, own);
    const theirs = record({ builtBy: 'other-workspace', startedAt: '2026-01-02T00:00:00.000Z' });
    stageArtifacts(workspaceRoot, dbtOutput(record({ buildId: 'elsewhere' }), ['manifest.json']), theirs, 'key1');

    expect((await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build'))?.buildRecord).toBe(
      paths.buildRecord,
    );
    expect(filesIn(paths.targetPath)).toEqual(['manifest.json']);
    expect(readBuildRecord(paths.buildRecord)).toMatchObject({ builtBy: here, startedAt: theirs.startedAt });
    expect(readBuildRecord(paths.buildRecord)?.filesRemovedAt).toBeUndefined();
  });

  it('leaves alone the record of a build that a live process is running', async () => {
    const running = record({ builtBy: workspaceId(workspaceRoot), status: 'running' });
    const paths = dbtOutput(running, ['manifest.json']);
    stageArtifacts(workspaceRoot, paths, record(), 'key1');
    writeBuildRecord(paths.buildRecord, running);

    const lock = buildLockName(running.commit, running.project, running.target);
    const installed = await withLock(locksDir(workspaceRoot), lock, () =>
      installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build'),
    );
    expect(installed).toBeUndefined();
    expect(readBuildRecord(paths.buildRecord)).toEqual(running);
  });

  it('removes what a run staged, or restored for a hit, once Nx cached it; not what another run staged since', () => {
    const build = record();
    const folder = join(stagingDir(workspaceRoot, 'analytics'), 'key1');
    stageArtifacts(workspaceRoot, dbtOutput(build, ['manifest.json']), build, 'key1', 'run-a');
    removeStaged(workspaceRoot, 'analytics', 'key1', { runId: 'run-b', restored: false });
    expect(existsSync(folder)).toBe(true);
    removeStaged(workspaceRoot, 'analytics', 'key1', { runId: 'run-a', restored: false });
    expect(existsSync(folder)).toBe(false);

    stageArtifacts(workspaceRoot, dbtOutput(build, ['manifest.json']), build, 'key1', 'run-a');
    removeStaged(workspaceRoot, 'analytics', 'key1', { runId: 'run-c', restored: true });
    expect(existsSync(folder)).toBe(false);
    expect(() => removeStaged(workspaceRoot, 'analytics', 'key1', { runId: 'run-c', restored: true })).not.toThrow();
  });

  it('installs nothing when nothing is staged', async () => {
    expect(await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build')).toBeUndefined();
    writeFiles(stagingDir(workspaceRoot, 'analytics'), { 'key1/target/manifest.json': '{}' });
    expect(await installStagedArtifacts(workspaceRoot, 'analytics', 'key1', 'isolated-build')).toBeUndefined();
    expect(existsSync(join(workspaceRoot, '.dot', 'abcd1234'))).toBe(false);
  });
});
