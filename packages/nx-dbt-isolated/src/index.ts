import { createNodes } from './plugin/nodes';

export { createNodes };
/** Nx 21 calls only `createNodesV2`; Nx 22 and later accept either name. */
export const createNodesV2 = createNodes;
export { createDependencies } from './plugin/dependencies';
export { preTasksExecution } from './plugin/pre-tasks';
export { postTasksExecution } from './plugin/post-tasks';
export type { DbtIsolatedPluginOptions } from './plugin/nodes';
