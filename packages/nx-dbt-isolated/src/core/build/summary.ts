import { join, relative } from 'node:path';
import type { BuildPaths } from '../workspace/dot-layout';
import { writeJsonAtomically } from '../workspace/files';
import { contentsOf, writesNoRelation, type BuildContents } from './contents';
import { readManifestResources } from '../dbt/artifacts';
import type { BuildRecord, BuildStatus } from './records';

/** Passed, failed, skipped and warned nodes of one resource type. */
export interface NodeCounts {
  passed: number;
  failed: number;
  skipped: number;
  warned: number;
}

/** What a build did, for people and for scripts: printed after the build, and kept as summary.json. */
export interface BuildSummary {
  project: string;
  ref: string;
  commit: string;
  dbtTarget: string;
  warehouse: BuildRecord['warehouse'];
  command: string;
  /** Whether it built the whole project (see contents.ts). */
  complete: boolean;
  /** What it holds, in words: `the whole project`, `3 of 7 models (--select)`, `compiled, not built`. */
  contents: string;
  status: BuildStatus;
  error?: string;
  schemas: string[];
  deferredTo?: BuildRecord['deferredTo'];
  startedAt: string;
  endedAt?: string;
  seconds?: number;
  /** Per resource type, from run_results.json: `{ model: { passed: 7, … }, test: { … } }`; none for a compile. */
  nodes: Record<string, NodeCounts>;
  /** A compile: the nodes it compiled per resource type, which it did not run. */
  compiled?: Record<string, number>;
  failures: { node: string; message: string }[];
  /** dbt's target folder, relative to the workspace root. */
  artifacts: string;
  restoredFromCacheAt?: string;
}

const OUTCOMES: Record<string, keyof NodeCounts> = {
  success: 'passed',
  pass: 'passed',
  error: 'failed',
  fail: 'failed',
  'runtime error': 'failed',
  skipped: 'skipped',
  'no-op': 'skipped',
  warn: 'warned',
};

export function buildSummary(workspaceRoot: string, paths: BuildPaths, record: BuildRecord): BuildSummary {
  const contents = contentsOf(record);
  const seconds = record.endedAt ? (Date.parse(record.endedAt) - Date.parse(record.startedAt)) / 1000 : undefined;
  return {
    project: record.project,
    ref: record.ref,
    commit: record.commit,
    dbtTarget: record.target,
    warehouse: record.warehouse,
    command: record.command,
    complete: contents.complete,
    contents: contentsText(contents, record, projectNodes(paths)),
    status: record.status,
    ...(record.error !== undefined && { error: record.error }),
    schemas: record.schemas.length > 0 ? record.schemas : [record.schema],
    ...(record.deferredTo && { deferredTo: record.deferredTo }),
    startedAt: record.startedAt,
    ...(record.endedAt !== undefined && { endedAt: record.endedAt, seconds }),
    nodes: writesNoRelation(record.command) ? {} : nodeCounts(record.results?.byType ?? {}),
    ...(writesNoRelation(record.command) && { compiled: ranCounts(record) }),
    failures: record.results?.failures ?? [],
    artifacts: relative(workspaceRoot, paths.targetPath),
    ...(record.restoredFromCacheAt !== undefined && { restoredFromCacheAt: record.restoredFromCacheAt }),
  };
}

function nodeCounts(byType: Record<string, Record<string, number>>): Record<string, NodeCounts> {
  const counts: Record<string, NodeCounts> = {};
  for (const [type, statuses] of Object.entries(byType)) {
    const typeCounts: NodeCounts = { passed: 0, failed: 0, skipped: 0, warned: 0 };
    for (const [status, count] of Object.entries(statuses)) typeCounts[OUTCOMES[status] ?? 'failed'] += count;
    counts[type] = typeCounts;
  }
  return counts;
}

/** The resource type a command builds, whose counts say how much of the project a partial build holds. */
const BUILT_TYPE: Record<string, string> = { seed: 'seed', snapshot: 'snapshot', test: 'test' };

/**
 * `the whole project`, `compiled, not built (--command=compile)`, `3 of 7 models (--select)`,
 * `slim: 2 models built, 5 read from analytics_1a2b3c4d`.
 */
function contentsText(contents: BuildContents, record: BuildRecord, project: Record<string, number>): string {
  if (contents.complete) return 'the whole project';
  if (writesNoRelation(record.command)) return `compiled, not built (${contents.partialBecause})`;
  const type = BUILT_TYPE[record.command] ?? 'model';
  const ran = ranCounts(record)[type] ?? 0;
  const total = project[type] ?? ran;
  if (record.deferredTo) return `slim: ${ran} ${type}s built, ${total - ran} read from ${record.deferredTo.schema}`;
  return `${ran} of ${total} ${type}s (${contents.partialBecause})`;
}

/** The nodes dbt ran (or compiled) per resource type, whatever their outcome. */
function ranCounts(record: BuildRecord): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [type, statuses] of Object.entries(record.results?.byType ?? {})) {
    counts[type] = Object.values(statuses).reduce((sum, count) => sum + count, 0);
  }
  return counts;
}

/** The project's nodes per resource type, from the build's manifest; none when it has none. */
function projectNodes(paths: BuildPaths): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const node of readManifestResources(join(paths.targetPath, 'manifest.json')) ?? []) {
    counts[node.resource_type] = (counts[node.resource_type] ?? 0) + 1;
  }
  return counts;
}

/** `.dot/<id>/<project>/<dbt target>/summary.json`, beside the target folder. */
export function writeBuildSummary(paths: BuildPaths, summary: BuildSummary): void {
  writeJsonAtomically(join(paths.buildDir, 'summary.json'), summary);
}
