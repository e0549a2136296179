import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DbtCommand, DbtSelection } from './dbt';
import type { BuildPaths } from './dot-layout';
import { errorMessage, UserError } from './errors';
import { duckDbFile } from './profiles';
import { readBuildRecord, type BuildRecord, type RecordedSelection } from './records';
import { dropSchemas } from './schema-drop';
import { withWarehouseLock } from './warehouse-lock';

export function recordedSelection({ select, exclude, selector, vars, extraArgs }: DbtSelection): RecordedSelection {
  return { select, exclude, selector, vars, extraArgs };
}

/** No node left out, no vars or extra arguments that change what dbt writes. */
function isWholeProject(selection: RecordedSelection): boolean {
  const { select, exclude, selector, vars, extraArgs } = selection;
  return !select?.length && !exclude?.length && !selector && !vars && !extraArgs?.length;
}

export interface ReuseRequest {
  workspaceRoot: string;
  command: DbtCommand;
  selection: DbtSelection;
  deferTo?: string;
  /** The key Nx hashed this build under; only a cached build is reused. */
  expectedKey?: string;
  rebuild?: boolean;
  dbt: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The succeeded full build of this commit, project and dbt target that this workspace already
 * holds under the same key, when its schemas still exist: what Nx would have restored, had the
 * command line named the commit as that build's did (Nx hashes `--ref=main` and `--ref=<sha>`
 * apart). A request that asks for less, or for a full refresh, is never served one.
 */
export async function reusableFullBuild(
  request: ReuseRequest,
  paths: BuildPaths,
  reporter: { info(line: string): void },
): Promise<BuildRecord | undefined> {
  const { selection, expectedKey } = request;
  if (expectedKey === undefined || request.rebuild) return undefined;
  if (request.command !== 'build' || request.deferTo !== undefined) return undefined;
  if (!isWholeProject(selection) || selection.fullRefresh) return undefined;
  const record = readBuildRecord(paths.buildRecord);
  if (!record || !isFullBuildUnder(record, expectedKey)) return undefined;
  if (!existsSync(join(paths.targetPath, 'manifest.json')) || !record.profile) return undefined;
  const missing = await missingSchemas(request, record, paths, reporter);
  if (missing.length > 0) {
    reporter.info(`• the build of this commit made at ${record.startedAt} lost ${missing.join(', ')}: building again`);
    return undefined;
  }
  return record;
}

function isFullBuildUnder(record: BuildRecord, key: string): boolean {
  const complete = record.command === 'build' && record.selection !== undefined && isWholeProject(record.selection);
  return record.key === key && record.status === 'succeeded' && complete && !record.deferredTo;
}

/** The build's schemas the warehouse no longer has; all of them when it cannot be asked. */
async function missingSchemas(
  request: ReuseRequest,
  record: BuildRecord,
  paths: BuildPaths,
  reporter: { info(line: string): void },
): Promise<string[]> {
  const schemas = record.schemas.length > 0 ? record.schemas : [record.schema];
  const file = duckDbFile(record.warehouse);
  // Connecting to a DuckDB file that is gone would create an empty one.
  if (file && !existsSync(file)) return schemas;
  try {
    const existing = await withWarehouseLock(request.workspaceRoot, record.warehouse, reporter, () =>
      dropSchemas({
        workspaceRoot: request.workspaceRoot,
        dbt: request.dbt,
        profilesDir: paths.profilesDir,
        profile: record.profile!,
        target: record.target,
        schemas,
        drop: false,
        env: request.env,
      }),
    );
    return schemas.filter((schema) => !existing.includes(schema));
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    reporter.info(`• could not look for the schemas of the build made at ${record.startedAt} (${errorMessage(error)})`);
    return schemas;
  }
}
