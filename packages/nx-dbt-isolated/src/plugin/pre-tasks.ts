import { readCachedProjectGraph, type PreTasksExecution } from '@nx/devkit';
import { isolatedBuildTasks, keyScope, setBuildKeys } from './build-keys';
import { requestedTasks } from './command-line';
import {
  BASE_FROM_CLI,
  COLOUR_FROM_CLI,
  colourChoiceOf,
  DBT_TARGET_FROM_CLI,
  DEFER_TO_FROM_CLI,
  EXCLUDE_FROM_CLI,
  HEAD_FROM_CLI,
  KEYED_AT,
  REF_FROM_CLI,
  RUN_ID,
} from '../contract';

/**
 * Runs before Nx hashes tasks: resolves `--ref` to a commit and sets the key of each isolated
 * build the command runs (only those: keying reads git and files), so that Nx's cache entry is
 * the commit's, not the branch name's.
 */
export const preTasksExecution: PreTasksExecution = async (_options, context) => {
  const graph = cachedGraph();
  const requested = requestedTasks(context.argv, graph);
  if (requested.dbtTarget !== undefined) process.env[DBT_TARGET_FROM_CLI] = requested.dbtTarget;
  if (requested.ref !== undefined) process.env[REF_FROM_CLI] = requested.ref;
  if (requested.deferTo !== undefined) process.env[DEFER_TO_FROM_CLI] = requested.deferTo;
  if (requested.base !== undefined) process.env[BASE_FROM_CLI] = requested.base;
  if (requested.head !== undefined) process.env[HEAD_FROM_CLI] = requested.head;
  if (requested.exclude !== undefined) process.env[EXCLUDE_FROM_CLI] = JSON.stringify(requested.exclude);
  process.env[COLOUR_FROM_CLI] = colourChoiceOf(process.env);
  process.env[KEYED_AT] = new Date().toISOString();
  process.env[RUN_ID] = context.id;
  const { projects, targets } = keyScope(graph, requested);
  const tasks = isolatedBuildTasks(graph, targets, requested.configuration, projects);
  await setBuildKeys(context.workspaceRoot, tasks, requested, process.env);
};

/** Nx writes the graph before it runs this hook; without it, executors report the missing key. */
function cachedGraph() {
  try {
    return readCachedProjectGraph();
  } catch {
    return { nodes: {}, dependencies: {} };
  }
}
