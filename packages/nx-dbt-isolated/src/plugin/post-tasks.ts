import { readCachedProjectGraph, type PostTasksExecution } from '@nx/devkit';
import { installStagedArtifacts } from '../core/artifacts';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from './build-keys';

const FROM_CACHE = new Set<string>(['local-cache', 'local-cache-kept-existing', 'remote-cache']);

/**
 * After a cache hit Nx has restored `.dot/cache/<project>`; this puts the artifacts of the build
 * keyed by the preTasksExecution hook where a build of that commit keeps them,
 * `.dot/<short_hash>/<project>/<target>/target`.
 */
export const postTasksExecution: PostTasksExecution = (_options, context) => {
  const restored = Object.values(context.taskResults).filter((result) => FROM_CACHE.has(result.status));
  if (restored.length === 0) return;
  const graph = readCachedProjectGraph();
  for (const { task } of restored) {
    const { project, target } = task.target;
    const key = process.env[buildKeyVariable(project, target)];
    if (key && graph.nodes[project]?.data.targets?.[target]?.executor === ISOLATED_BUILD_EXECUTOR) {
      installStagedArtifacts(context.workspaceRoot, project, key);
    }
  }
};
