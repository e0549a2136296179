import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFixtureRepo, git, type FixtureRepo } from './repo';
import { TEMPLATE_DIR, VENV_BIN } from './paths';

export interface NxResult {
  code: number | null;
  output: string;
}

export interface TestWorkspace extends FixtureRepo {
  /** Runs the real nx CLI of the workspace; resolves with its exit code and combined output. */
  nx(args: string[], env?: NodeJS.ProcessEnv, stream?: boolean): Promise<NxResult>;
  /** What the user would lose if a build touched their repository: status, branches, stash, HEAD. */
  gitState(): string;
  remove(): void;
}

/**
 * An Nx workspace made from the fixture, with the packaged plugin installed: in `dir`, or in a
 * new temporary folder.
 */
export function createTestWorkspace(
  plugins?: unknown[],
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-e2e-'))),
): TestWorkspace {
  const repo = createFixtureRepo(dir, plugins);
  return { ...repo, ...installedWorkspace(dir) };
}

/** A second clone of the workspace's repository at another absolute path, as a teammate has. */
export function cloneWorkspace(source: string): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-e2e-clone-')));
  execFileSync('git', ['clone', '-q', source, dir]);
  symlinkSync(join(TEMPLATE_DIR, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** The workspace in `dir` with the template's node_modules (the packaged plugin and nx) linked in. */
export function installedWorkspace(dir: string): Pick<TestWorkspace, 'nx' | 'gitState' | 'remove'> {
  symlinkSync(join(TEMPLATE_DIR, 'node_modules'), join(dir, 'node_modules'));
  return {
    nx: (args, env = {}, stream = false) => runNx(dir, args, env, stream),
    gitState: () =>
      [
        git(dir, 'status', '--porcelain', '--untracked-files=all'),
        git(dir, 'branch', '--list', '--verbose', '--no-abbrev'),
        git(dir, 'stash', 'list'),
        git(dir, 'rev-parse', 'HEAD'),
        git(dir, 'symbolic-ref', 'HEAD'),
      ].join('\n--\n'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function nxEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${VENV_BIN}:${process.env.PATH}`,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    NX_SKIP_NX_CACHE: 'false',
    FORCE_COLOR: '0',
    ...extra,
  };
}

/** Runs the nx CLI of the workspace in `dir`, without blocking this process's event loop. */
export function runNx(dir: string, args: string[], env: NodeJS.ProcessEnv = {}, stream = false): Promise<NxResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(dir, 'node_modules', '.bin', 'nx'), args, { cwd: dir, env: nxEnvironment(env) });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk;
      if (stream) process.stdout.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
