import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DbtLocations } from '../../dbt/args';
import type { ParsedRunExit } from '../../dbt/parse-then-run';
import { makeTempDir, removeDir } from '../../testing/git-repo';
import { buildPaths } from '../../workspace/dot-layout';
import type { BuildPhase } from '../records';
import type { BuildContext } from './context';
import { startWithPackages, type PackagesToInstall } from './deps';

/** A started dbt process as the test drives it: it installs the packages, then ends, when told. */
interface Started {
  deps: PackagesToInstall;
  end(): void;
}

/** How the stand-in dbt ended: successfully, having installed the packages when it did. */
const exitOf = (installed: boolean): ParsedRunExit => ({
  code: 0,
  signal: null,
  interrupted: false,
  installed,
  parsed: true,
  ended: false,
});

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
      reporter: { info: (line: string) => lines.push(line) },
      checkedOut: { projectDir, checkout: { buildId: 'abc12345', createdAt: '2026-12-01T00:00:00.000Z' } },
      paths,
    } as unknown as BuildContext;
    const phases: BuildPhase[] = [];
    const locations = { projectDir, profilesDir: paths.profilesDir, logPath: paths.logPath } as DbtLocations;
    const starts: Started[] = [];
    const lines: string[] = [];
    const running = startWithPackages(
      context,
      (phase) => phases.push(phase),
      locations,
      (deps) => {
        let installed = false;
        const driven = deps && { ...deps, installed: () => ((installed = true), deps.installed()) };
        return new Promise<ParsedRunExit>((resolve) =>
          starts.push({ deps: driven, end: () => resolve(exitOf(installed)) }),
        );
      },
    );
    return { running, starts, lines, phase: () => phases.at(-1) };
  }

  /** Long enough for a lock that is free to be taken (workspace/lock.ts polls). */
  const settled = () => new Promise((resolve) => setTimeout(resolve, 1_500));

  it('starts dbt without deps in a project that declares no packages', async () => {
    const build = buildOf('dev');
    await settled();
    expect(build.starts.map((start) => start.deps)).toEqual([undefined]);
    expect(build.phase()).toBe('dbt');
    build.starts[0].end();
    await expect(build.running).resolves.toEqual(exitOf(false));
    expect(build.lines).toEqual([]);
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
    await expect(Promise.all([first.running, second.running])).resolves.toEqual([exitOf(true), exitOf(false)]);
    expect(first.lines).toEqual(['• dbt deps …', expect.stringMatching(/^• dbt deps \(\d+\.\ds\)$/)]);
    expect(second.lines).toEqual([]);
  });

  it('lets the next build install the packages when the first ended without installing them', async () => {
    writeFileSync(join(projectDir, 'packages.yml'), 'packages: []\n');
    const first = buildOf('dev');
    await settled();
    const second = buildOf('pg');
    first.starts[0].end();
    await expect(first.running).rejects.toThrow(`dbt deps failed in ${projectDir} (see its output above)`);
    expect(first.lines).toEqual(['• dbt deps …', expect.stringMatching(/^• dbt deps \(/)]);
    await settled();
    expect(second.starts).toHaveLength(1);
    second.starts[0].deps!.installed();
    second.starts[0].end();
    await expect(second.running).resolves.toEqual(exitOf(true));
  });
});
