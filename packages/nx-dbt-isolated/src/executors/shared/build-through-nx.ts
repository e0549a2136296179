import { spawn } from 'node:child_process';
import { UserError } from '../../core/workspace/errors';
import { CONTRACT_ENV_PREFIX } from '../../contract';

export interface BuildThroughNx {
  workspaceRoot: string;
  project: string;
  /** The project's isolated-build target. */
  targetName: string;
  /** A full sha, so that the build is keyed on what was resolved here. */
  commit: string;
  dbtTarget?: string;
  configuration?: string;
  /** The outer task's profiles folder and dbt, so that the build uses the profile the task reads. */
  profilesDir?: string;
  dbtExecutable?: string;
  /** Run dbt even on a cache hit: this workspace holds a partial build of the commit (see BuildCommit). */
  rerun?: boolean;
}

/**
 * Runs `nx run <project>:<target> --ref=<commit>` so that an isolated build another task needs
 * comes from Nx's cache (local or remote) where it can, and is cached once made. Its output goes
 * to stderr: a task printing JSON on stdout keeps stdout for that.
 */
export function buildThroughNx(build: BuildThroughNx): Promise<void> {
  const args = [nxBin(build.workspaceRoot), 'run', `${build.project}:${build.targetName}`, `--ref=${build.commit}`];
  if (build.dbtTarget !== undefined) args.push(`--target=${build.dbtTarget}`);
  if (build.configuration !== undefined) args.push(`--configuration=${build.configuration}`);
  if (build.profilesDir !== undefined) args.push(`--profilesDir=${build.profilesDir}`);
  if (build.dbtExecutable !== undefined) args.push(`--dbtExecutable=${build.dbtExecutable}`);
  if (build.rerun) args.push('--skip-nx-cache');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: build.workspaceRoot,
      env: nestedEnvironment(process.env),
      stdio: ['ignore', process.stderr, process.stderr],
    });
    child.on('error', (error) => reject(failedBuild(build, error.message)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(failedBuild(build));
    });
  });
}

function nxBin(workspaceRoot: string): string {
  try {
    return require.resolve('nx/bin/nx', { paths: [workspaceRoot] });
  } catch {
    throw new UserError(
      `nx is not installed in ${workspaceRoot}, so the isolated build this task needs cannot be made through it: run npm install there, then run this again.`,
    );
  }
}

/**
 * The outer task's environment without what Nx and this plugin set for that task alone: the
 * command line it carried (ref, dbt target, build keys) and Nx's own task variables. Nx counts
 * every `nx` started under one root process as one chain and stops a task id seen twice in it;
 * building another commit of the same project is no loop, so the nested nx is a root of its own.
 */
const NX_TASK_VARIABLES = new Set(['NX_INVOCATION_ROOT_PID', 'NX_TERMINAL_OUTPUT_PATH']);

export function nestedEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const nested: NodeJS.ProcessEnv = { ...env, NX_TUI: 'false' };
  for (const name of Object.keys(nested)) {
    if (name.startsWith(CONTRACT_ENV_PREFIX) || name.startsWith('NX_TASK_') || NX_TASK_VARIABLES.has(name)) {
      delete nested[name];
    }
  }
  return nested;
}

function failedBuild(build: BuildThroughNx, startError?: string): UserError {
  const what = startError === undefined ? 'failed (its output is above)' : `could not start (${startError})`;
  return new UserError(
    `the isolated build of ${build.project} at ${build.commit.slice(0, 12)} that this task needs ${what}: fix it, or build it yourself with nx run ${build.project}:${build.targetName} --ref=${build.commit.slice(0, 12)}, then run this again.`,
  );
}
