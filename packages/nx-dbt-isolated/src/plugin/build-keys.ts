import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import type { ProjectGraph } from '@nx/devkit';
import { buildKey, UNCACHEABLE } from '../core/build-key';
import { errorMessage } from '../core/errors';
import { repositoryRoot, resolveCommit } from '../core/refs';

export const ISOLATED_BUILD_EXECUTOR = 'nx-dbt-isolated:isolated-build';

/**
 * The environment variable holding one project's build key. Nx hashes it through an `env`
 * input of the project's isolated-build target, so the cache entry is the commit's.
 */
export function buildKeyVariable(project: string): string {
  const readable = project.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();
  const unique = createHash('sha256').update(project).digest('hex').slice(0, 8);
  return `NX_DBT_ISOLATED_KEY_${readable}_${unique}`;
}

export interface IsolatedBuildTask {
  project: string;
  root: string;
  options: { ref?: string; profilesDir?: string; dbtExecutable?: string };
}

/** The isolated-build targets of the graph that the command runs (all of them if unknown). */
export function isolatedBuildTasks(graph: ProjectGraph, targets: string[] | undefined): IsolatedBuildTask[] {
  const tasks: IsolatedBuildTask[] = [];
  for (const node of Object.values(graph.nodes)) {
    for (const [name, target] of Object.entries(node.data.targets ?? {})) {
      if (target.executor !== ISOLATED_BUILD_EXECUTOR) continue;
      if (targets && !targets.includes(name)) continue;
      tasks.push({ project: node.name, root: node.data.root, options: target.options ?? {} });
    }
  }
  return tasks;
}

/**
 * Sets each task's build key in the environment. A ref or profile the executor will refuse
 * gets a key that matches nothing; the executor then reports the problem.
 */
export async function setBuildKeys(
  workspaceRoot: string,
  tasks: IsolatedBuildTask[],
  cliRef: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  if (tasks.length === 0) return;
  const commits = new Map<string, Promise<string>>();
  const repoRoot = await repositoryRoot(workspaceRoot).catch(() => undefined);
  for (const task of tasks) {
    const ref = cliRef ?? task.options.ref ?? 'HEAD';
    try {
      if (!repoRoot) throw new Error('not a git repository');
      if (!commits.has(ref)) commits.set(ref, resolveCommit(repoRoot, ref));
      const commit = await commits.get(ref)!;
      env[buildKeyVariable(task.project)] = buildKey({
        workspaceRoot,
        projectRoot: task.root,
        commit,
        profilesDir: task.options.profilesDir,
        dbtExecutable: task.options.dbtExecutable,
        env,
        homeDir: homedir(),
      });
    } catch (error) {
      env[buildKeyVariable(task.project)] =
        `${UNCACHEABLE}-${createHash('sha256').update(errorMessage(error)).digest('hex')}`;
    }
  }
}
