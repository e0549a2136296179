import type { PostTasksExecution, PreTasksExecution } from '@nx/devkit';
import { createNodes } from './plugin/nodes';

export { createNodes };
/** Nx 21 calls only `createNodesV2`; Nx 22 and later accept either name. */
export const createNodesV2 = createNodes;
export { createDependencies } from './plugin/dependencies';
export type { DbtIsolatedPluginOptions } from './plugin/nodes';

// The hooks' modules (git, dbt, the cache key) load only when a command runs tasks: every Nx
// command loads this file in the plugin's worker, `nx show projects` included.
export const preTasksExecution: PreTasksExecution = async (options, context) =>
  (await import('./plugin/pre-tasks')).preTasksExecution(options, context);
export const postTasksExecution: PostTasksExecution = async (options, context) =>
  (await import('./plugin/post-tasks')).postTasksExecution(options, context);
