import { readCachedProjectGraph, type PostTasksExecution } from '@nx/devkit';
import { homedir } from 'node:os';
import { installStagedArtifacts } from '../core/artifacts';
import { claimRestored } from '../core/claims';
import { errorMessage, UserError } from '../core/errors';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from './build-keys';

const FROM_CACHE = new Set<string>(['local-cache', 'local-cache-kept-existing', 'remote-cache']);

/**
 * After a cache hit Nx has restored `.dot/cache/<project>`; this puts the artifacts of the build
 * keyed by the preTasksExecution hook where a build of that commit keeps them,
 * `.dot/<short_hash>/<project>/<target>/target`, and claims it in the warehouse (claims.ts).
 */
export const postTasksExecution: PostTasksExecution = async (_options, context) => {
  const restored = Object.values(context.taskResults).filter((result) => FROM_CACHE.has(result.status));
  if (restored.length === 0) return;
  const graph = readCachedProjectGraph();
  const problems: string[] = [];
  for (const { task } of restored) {
    const { project, target } = task.target;
    const key = process.env[buildKeyVariable(project, target)];
    const node = graph.nodes[project];
    const options = node?.data.targets?.[target];
    if (!key || options?.executor !== ISOLATED_BUILD_EXECUTOR) continue;
    const paths = installStagedArtifacts(context.workspaceRoot, project, key);
    if (!paths) continue;
    const { profilesDir, dbtExecutable } = {
      ...options.options,
      ...options.configurations?.[task.target.configuration ?? ''],
    };
    await claimRestored({
      workspaceRoot: context.workspaceRoot,
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
};
