import {
  logger,
  readCachedProjectGraph,
  type PostTasksExecution,
  type ProjectGraph,
  type TaskResult,
} from '@nx/devkit';
import { repositoryRoot, resolveCommit } from '../core/git/refs';
import { uncommittedChangesWarning } from '../core/git/working-tree';
import { isolatedBuildTasks } from './build-keys';
import { requestedTasks } from './command-line';
import { homedir } from 'node:os';
import { installStagedArtifacts, removeStaged } from '../core/cache/staged-artifacts';
import { claimRestored } from '../core/warehouse/claims';
import { errorMessage, UserError } from '../core/workspace/errors';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from '../contract';

const FROM_CACHE = new Set<string>(['local-cache', 'local-cache-kept-existing', 'remote-cache']);

/**
 * After a cache hit Nx has restored `.dot/cache/<project>`; this puts the artifacts of the build
 * keyed by the preTasksExecution hook where a build of that commit keeps them,
 * `.dot/<short_hash>/<project>/<target>/target`, and claims it in the warehouse (warehouse/claims.ts).
 * Then, Nx having cached every task of the run, it removes what the run staged (cache/staged-artifacts.ts).
 */
export const postTasksExecution: PostTasksExecution = async (_options, context) => {
  const results = Object.values(context.taskResults);
  const graph = lazyGraph();
  try {
    await installRestored(context.workspaceRoot, results, graph);
    for (const line of await uncommittedChangesLeftOut(context.workspaceRoot, results, graph, context.argv)) {
      logger.warn(`nx-dbt-isolated: ${line}`);
    }
  } finally {
    for (const { task, status } of results) {
      const key = keyOf(task, graph);
      const restored = FROM_CACHE.has(status);
      if (key) removeStaged(context.workspaceRoot, task.target.project, key, { runId: context.id, restored });
    }
  }
};

async function installRestored(workspaceRoot: string, results: TaskResult[], graph: () => ProjectGraph): Promise<void> {
  const restored = results.filter((result) => FROM_CACHE.has(result.status));
  if (restored.length === 0) return;
  const problems: string[] = [];
  for (const { task } of restored) {
    const key = keyOf(task, graph);
    const node = graph().nodes[task.target.project];
    const options = node?.data.targets?.[task.target.target];
    if (!key || options?.executor !== ISOLATED_BUILD_EXECUTOR) continue;
    const paths = await installStagedArtifacts(workspaceRoot, task.target.project, key, task.target.target).catch(
      (error: unknown) => {
        if (!(error instanceof UserError)) throw error;
        problems.push(`nx-dbt-isolated: ${errorMessage(error)}`);
      },
    );
    if (!paths) continue;
    const { profilesDir, dbtExecutable } = {
      ...options.options,
      ...options.configurations?.[task.target.configuration ?? ''],
    };
    await claimRestored({
      workspaceRoot,
      projectRoot: node.data.root,
      paths,
      profilesDir,
      dbtExecutable,
      env: process.env,
      homeDir: homedir(),
    }).catch((error: unknown) => problems.push(`nx-dbt-isolated: ${errorMessage(error)}`));
  }
  // Nx has already printed the hits: failing here makes the command exit non-zero with the reason.
  if (problems.length > 0) throw new UserError(problems.join('\n'));
}

/**
 * For each isolated build restored from the cache, of the commit checked out in the working tree:
 * the line saying which uncommitted changes it leaves out (a build that ran says it itself, in
 * its output; a hit replays that output as it was then). Only words: a failure to read the
 * working tree says nothing. With the Nx daemon this hook runs there, and the line goes to its log.
 */
async function uncommittedChangesLeftOut(
  workspaceRoot: string,
  results: TaskResult[],
  graph: () => ProjectGraph,
  argv: readonly string[],
): Promise<string[]> {
  const restored = results.filter(({ status, task }) => FROM_CACHE.has(status) && keyOf(task, graph) !== undefined);
  if (restored.length === 0) return [];
  const repoRoot = await repositoryRoot(workspaceRoot).catch(() => undefined);
  if (!repoRoot) return [];
  const head = await resolveCommit(repoRoot, 'HEAD').catch(() => undefined);
  const requested = requestedTasks([...argv], graph());
  const commits = new Map<string, Promise<string>>();
  const lines: string[] = [];
  for (const { task } of restored) {
    const [build] = isolatedBuildTasks(graph(), [task.target.target], task.target.configuration, [task.target.project]);
    if (!build || !head) continue;
    const ref = String(requested.ref ?? build.options.ref ?? 'HEAD');
    if (!commits.has(ref)) commits.set(ref, resolveCommit(repoRoot, ref));
    const line = await commits
      .get(ref)!
      .then((commit) =>
        uncommittedChangesWarning(
          { workspaceRoot, projectRoot: build.root, project: task.target.project, ref, commit },
          head,
        ),
      )
      .catch(() => undefined);
    if (line) lines.push(line);
  }
  return lines;
}

/** The key the preTasksExecution hook gave the task: only isolated builds have one. */
function keyOf(task: TaskResult['task'], graph: () => ProjectGraph): string | undefined {
  const root = task.projectRoot ?? graph().nodes[task.target.project]?.data.root;
  return root === undefined ? undefined : process.env[buildKeyVariable(root, task.target.target)];
}

function lazyGraph(): () => ProjectGraph {
  let graph: ProjectGraph | undefined;
  return () => (graph ??= readCachedProjectGraph());
}
