import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildPaths, stagingDir, type BuildPaths } from './dot-layout';
import { readBuildRecord, writeBuildRecord, type BuildRecord } from './records';

/**
 * dbt's artifacts worth keeping for a build: what `--state`, docs and diffs read. Partial parse
 * and compiled SQL hold absolute paths of this clone and are left out.
 */
export const CACHED_ARTIFACTS = ['manifest.json', 'run_results.json', 'semantic_manifest.json', 'catalog.json'];
const RECORD = 'build.json';

/** Replaces the project's staging folder with this build's artifacts and record, in one rename. */
export function stageArtifacts(workspaceRoot: string, paths: BuildPaths, record: BuildRecord): void {
  const staging = stagingDir(workspaceRoot, record.project);
  const temporary = `${staging}.${process.pid}.tmp`;
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(join(temporary, 'target'), { recursive: true });
  for (const file of CACHED_ARTIFACTS) {
    const source = join(paths.targetPath, file);
    if (existsSync(source)) cpSync(source, join(temporary, 'target', file));
  }
  writeBuildRecord(join(temporary, RECORD), record);
  rmSync(staging, { recursive: true, force: true });
  renameSync(temporary, staging);
}

/**
 * Copies what Nx restored into the project's staging folder to the build's own folder under
 * `.dot/<short_hash>/`, where a build made here would have left it.
 */
export function installStagedArtifacts(workspaceRoot: string, project: string): BuildPaths | undefined {
  const staging = stagingDir(workspaceRoot, project);
  const record = readBuildRecord(join(staging, RECORD));
  if (!record) return undefined;
  const paths = buildPaths(workspaceRoot, record.buildId, project, record.target);
  mkdirSync(paths.targetPath, { recursive: true });
  cpSync(join(staging, 'target'), paths.targetPath, { recursive: true });
  writeBuildRecord(paths.buildRecord, { ...record, restoredFromCacheAt: new Date().toISOString() });
  return paths;
}
