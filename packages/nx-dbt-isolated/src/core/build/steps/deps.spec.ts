import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DbtLocations } from '../../dbt/args';
import { makeTempDir, removeDir } from '../../testing/git-repo';
import { buildPaths } from '../../workspace/dot-layout';
import { readBuildRecord, type BuildRecord } from '../records';
import type { BuildContext } from './context';
import { startWithPackages, type PackagesToInstall } from './deps';

/** A started dbt process as the test drives it: it installs the packages, then ends, when told. */
interface Started {
  deps: PackagesToInstall;
  end(): void;
}

describe('startWithPackages', () => {
  let root: string;
  let projectDir: string;
  beforeEach(() => {
    root = makeTempDir('deps-');
    projectDir = join(root, '.dot', 'abc12345', 'worktree', 'analytics');
    mkdirSync(projectDir, { recursive: true });
  });
  afterEach(() => removeDir(root));

  /** One build's context at the same checkout, for dbt target `target`. */
  function buildOf(target: string) {
    const paths = buildPaths(root, 'abc12345', 'analytics', target);
    mkdirSync(paths.buildDir, { recursive: true });
    const context = {
      request: { workspaceRoot: root, project: 'analytics' },
      checkedOut: { projectDir, checkout: { buildId: 'abc12345', createdAt: '2026-12-01T00:00:00.000Z' } },
      paths,
    } as unknown as BuildContext;
    const record = { commit: 'abc12345', buildId: 'abc12345', status: 'running' } as BuildRecord;
    const locations = { projectDir, profilesDir: paths.profilesDir, logPath: paths.logPath } as DbtLocations;
    const starts: Started[] = [];
    const running = startWithPackages(
      context,
      record,
      locations,
      (deps) => new Promise<string>((resolve) => starts.push({ deps, end: () => resolve(target) })),
    );
    return { running, starts, phase: () => readBuildRecord(paths.buildRecord)?.phase };
  }

  /** Long enough for a lock that is free to be taken (workspace/lock.ts polls). */
  const settled = () => new Promise((resolve) => setTimeout(resolve, 1_500));

  it('starts dbt without deps in a project that declares no packages', async () => {
    const build = buildOf('dev');
    await settled();
    expect(build.starts.map((start) => start.deps)).toEqual([undefined]);
    expect(build.phase()).toBe('dbt');
    build.starts[0].end();
    await expect(build.running).resolves.toBe('dev');
  });

  it('installs once per checkout: a second build waits until the packages are installed, not until the first ends', async () => {
    writeFileSync(join(projectDir, 'packages.yml'), 'packages: []\n');
    const first = buildOf('dev');
    await settled();
    expect(first.starts).toHaveLength(1);
    expect(first.starts[0].deps?.args).toEqual(expect.arrayContaining(['deps', '--project-dir', projectDir]));
    expect(first.phase()).toBe('deps');

    const second = buildOf('pg');
    await settled();
    expect(second.starts).toHaveLength(0);

    first.starts[0].deps!.installed();
    await settled();
    expect(first.phase()).toBe('dbt');
    expect(second.starts.map((start) => start.deps)).toEqual([undefined]);

    second.starts[0].end();
    first.starts[0].end();
    await expect(Promise.all([first.running, second.running])).resolves.toEqual(['dev', 'pg']);
  });

  it('lets the next build install the packages when the first ended without installing them', async () => {
    writeFileSync(join(projectDir, 'packages.yml'), 'packages: []\n');
    const first = buildOf('dev');
    await settled();
    const second = buildOf('pg');
    first.starts[0].end();
    await first.running;
    await settled();
    expect(second.starts).toHaveLength(1);
    expect(second.starts[0].deps).toBeDefined();
    second.starts[0].end();
    await second.running;
  });
});
