import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findDbt } from '../dbt/executable';
import { resolveDbtTarget } from '../dbt/target';
import { dotRoot } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { findFullBuild, type BuildCommit } from '../build/full-build';
import type { WarehouseConnection } from '../dbt/operation';
import type { RecordedBuild } from '../build/records';
import { repositoryRoot, resolveCommit } from '../git/refs';
import { withWarehouseLock } from '../warehouse/duckdb-lock';
import { runQueries } from '../warehouse/sql';
import { compareData } from './data-diff';
import { compareManifests, modelsToCompare, readManifest } from './manifest-diff';
import { renderMarkdown } from './report';
import type { BuildSide, DiffReport } from './types';
import type { Reporter } from '../workspace/reporter';

export interface DiffRequest {
  workspaceRoot: string;
  project: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  /** The project's isolated-build target, for messages and for building a missing build. */
  targetName: string;
  base: string;
  head: string;
  dbtTarget?: string;
  /** Models (names or unique ids) whose data to compare besides the changed ones. */
  select: string[];
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
  /** Builds a commit that has no full isolated build. */
  build?: BuildCommit;
}

export interface DiffResult {
  report: DiffReport;
  /** The report's JSON and Markdown files under `.dot/diffs/<project>/`. */
  files: { json: string; markdown: string };
}

/**
 * Compares the isolated builds of two commits: nodes by manifest checksum, then the data of
 * the changed and selected models in the warehouse, both builds read through one connection.
 */
export async function diffCommits(request: DiffRequest, reporter: Reporter): Promise<DiffResult> {
  const repoRoot = await repositoryRoot(request.workspaceRoot);
  const { target: dbtTarget, profile } = resolveDbtTarget({ ...request, target: request.dbtTarget });
  const builds: RecordedBuild[] = [];
  for (const ref of [request.base, request.head]) {
    const commit = await resolveCommit(repoRoot, ref);
    builds.push(await findFullBuild({ ...request, dbtTarget, ref, commit, purpose: 'to compare' }));
  }
  const [base, head] = builds;
  const manifests = builds.map((build) => manifestOf(build));
  const changes = compareManifests(manifests[0], manifests[1]);
  const models = modelsToCompare(manifests[0], manifests[1], changes, request.select);
  const connection = connectionOf(request, head, profile);
  const data = await withWarehouseLock(request.workspaceRoot, head.record.warehouse, reporter, () =>
    compareData(models, (queries) =>
      runQueries(connection, queries, `compare ${base.record.schema} with ${head.record.schema}`),
    ),
  );
  const { downstream, ...nodes } = changes;
  const report: DiffReport = {
    project: request.project,
    target: dbtTarget,
    base: side(request.base, base),
    head: side(request.head, head),
    nodes,
    downstream,
    data,
  };
  return { report, files: writeReport(request.workspaceRoot, report, base, head) };
}

function manifestOf({ paths, record }: RecordedBuild) {
  try {
    return readManifest(join(paths.targetPath, 'manifest.json'));
  } catch (error) {
    throw new UserError(`${(error as Error).message}: build ${record.commit.slice(0, 12)} again, then diff.`);
  }
}

function connectionOf(request: DiffRequest, build: RecordedBuild, profile: string): WarehouseConnection {
  return {
    workspaceRoot: request.workspaceRoot,
    dbt: findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH),
    profilesDir: build.paths.profilesDir,
    profile: build.record.profile ?? profile,
    target: build.record.target,
    env: request.env,
  };
}

function side(ref: string, { record }: RecordedBuild): BuildSide {
  return { ref, commit: record.commit, schema: record.schema };
}

function writeReport(workspaceRoot: string, report: DiffReport, base: RecordedBuild, head: RecordedBuild) {
  const dir = join(dotRoot(workspaceRoot), 'diffs', encodeURIComponent(report.project));
  mkdirSync(dir, { recursive: true });
  const name = `${base.record.buildId}..${head.record.buildId}`;
  const files = { json: join(dir, `${name}.json`), markdown: join(dir, `${name}.md`) };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(files.markdown, renderMarkdown(report));
  return files;
}
