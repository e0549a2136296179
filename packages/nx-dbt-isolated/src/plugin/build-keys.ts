import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { simpleGit } from 'simple-git';
import type { ProjectGraph } from '@nx/devkit';
import { buildKey, issueKeyTokens, readKeyInputs, UNCACHEABLE } from '../core/cache/key';
import { parseDbtProject } from '../core/dbt/project';
import { askedDbtTarget, dbtTargetFor } from '../core/dbt/target';
import { repositoryRoot, resolveCommit } from '../core/git/refs';
import { buildKeyVariable, ISOLATED_BUILD_EXECUTOR } from '../contract';
import type { RequestedTasks } from './command-line';

export interface IsolatedBuildTask {
  project: string;
  target: string;
  root: string;
  /** The target's options with those of the configuration run merged in. */
  options: {
    ref?: string;
    deferTo?: string;
    target?: string;
    exclude?: string[] | string;
    profilesDir?: string;
    dbtExecutable?: string;
  };
}

/**
 * The isolated-build targets of the graph that the command runs: of the projects given (all when
 * undefined), the targets given (all when undefined).
 */
export function isolatedBuildTasks(
  graph: ProjectGraph,
  targets: string[] | undefined,
  configuration?: string,
  projects?: string[],
): IsolatedBuildTask[] {
  const tasks: IsolatedBuildTask[] = [];
  const nodes = projects ? projects.flatMap((name) => graph.nodes[name] ?? []) : Object.values(graph.nodes);
  for (const node of nodes) {
    for (const [name, target] of Object.entries(node.data.targets ?? {})) {
      if (target.executor !== ISOLATED_BUILD_EXECUTOR) continue;
      if (targets && !targets.includes(name)) continue;
      const chosen = configuration ?? target.defaultConfiguration;
      const options = { ...target.options, ...(chosen ? target.configurations?.[chosen] : undefined) };
      tasks.push({ project: node.name, target: name, root: node.data.root, options });
    }
  }
  return tasks;
}

/** Which isolated builds to key: of these projects and targets, each every one when undefined. */
export interface KeyScope {
  projects?: string[];
  targets?: string[];
}

/**
 * The isolated builds the command runs: the projects and targets the command line names. A
 * requested target that depends on other tasks can run isolated builds of any project and
 * target (only Nx resolves which), so then every isolated build is keyed.
 */
export function keyScope(graph: ProjectGraph, requested: Pick<RequestedTasks, 'projects' | 'targets'>): KeyScope {
  const { projects, targets } = requested;
  if (!targets) return {};
  const nodes = projects ? projects.flatMap((name) => graph.nodes[name] ?? []) : Object.values(graph.nodes);
  const runsOthers = nodes.some((node) =>
    targets.some((target) => (node.data.targets?.[target]?.dependsOn ?? []).length > 0),
  );
  return runsOthers ? {} : { projects, targets };
}

/** Options given on the command line, which override the target's as they do for the executor. */
export interface CommandLineChoices {
  ref?: string;
  deferTo?: string;
  dbtTarget?: string;
  exclude?: string[];
  profilesDir?: string;
  dbtExecutable?: string;
}

/**
 * Sets each task's build key in the environment, after making the warehouse tokens it reads
 * (the one step of keying that writes). A ref or profile the executor will refuse
 * gets a random key that matches nothing; the executor then reports the problem.
 */
export async function setBuildKeys(
  workspaceRoot: string,
  tasks: IsolatedBuildTask[],
  choices: CommandLineChoices,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  if (tasks.length === 0) return;
  const commits = new Map<string, Promise<string>>();
  const repoRoot = await repositoryRoot(workspaceRoot).catch(() => undefined);
  for (const task of tasks) {
    const ref = choices.ref ?? task.options.ref ?? 'HEAD';
    try {
      if (!repoRoot) throw new Error('not a git repository');
      if (!commits.has(ref)) commits.set(ref, resolveCommit(repoRoot, ref));
      const commit = await commits.get(ref)!;
      const deferTo = choices.deferTo ?? task.options.deferTo;
      if (deferTo !== undefined && !commits.has(deferTo)) commits.set(deferTo, resolveCommit(repoRoot, deferTo));
      const request = {
        workspaceRoot,
        project: task.project,
        projectRoot: task.root,
        commit,
        deferTo: deferTo === undefined ? undefined : await commits.get(deferTo)!,
        profile: await profileAtCommit(repoRoot, join(realpathSync(workspaceRoot), task.root), commit),
        dbtTarget: dbtTargetFor(askedDbtTarget(choices.dbtTarget, task.options.target), env),
        exclude: asList(choices.exclude ?? task.options.exclude),
        profilesDir: choices.profilesDir ?? task.options.profilesDir,
        dbtExecutable: choices.dbtExecutable ?? task.options.dbtExecutable,
        env,
        homeDir: homedir(),
      };
      const inputs = readKeyInputs(request);
      issueKeyTokens({ ...request, inputs });
      env[buildKeyVariable(task.root, task.target)] = buildKey({ ...request, inputs });
    } catch {
      env[buildKeyVariable(task.root, task.target)] = `${UNCACHEABLE}-${randomUUID()}`;
    }
  }
}

/** A list option as a list: Nx gives a single command-line value as a string. */
export function asList(value: string[] | string | undefined): string[] | undefined {
  return value === undefined || Array.isArray(value) ? value : [value];
}

/** The vars option as dbt's --vars takes it: YAML or JSON text, an object as JSON. */
export function varsText(vars: string | Record<string, unknown> | undefined): string | undefined {
  return typeof vars === 'object' ? JSON.stringify(vars) : vars;
}

/** `profile:` of the project's dbt_project.yml as committed, which is what the build will use. */
async function profileAtCommit(repoRoot: string, projectDir: string, commit: string): Promise<string | undefined> {
  const path = `${relative(repoRoot, projectDir)}/dbt_project.yml`;
  const text = await simpleGit(repoRoot).show([`${commit}:${path}`]);
  return parseDbtProject(text, path).profile;
}
