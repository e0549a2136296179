import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildContents, contentsOf, isPlainFullBuild } from './contents';
import type { DbtCommand, DbtSelection } from '../dbt/args';
import type { BuildPaths } from '../workspace/dot-layout';
import { errorMessage, UserError } from '../workspace/errors';
import { duckDbFile, sameWarehouse, type WarehouseIdentity } from '../dbt/profiles';
import { readBuildRecord, type BuildRecord, type RecordedSelection } from './records';
import { dropSchemas } from '../warehouse/schema-drop';
import { withWarehouseLock } from '../warehouse/duckdb-lock';
import type { Reporter } from '../workspace/reporter';

export function recordedSelection({ select, exclude, selector, vars, extraArgs }: DbtSelection): RecordedSelection {
  return { select, exclude, selector, vars, extraArgs };
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
  /** Where this build would write: a full build elsewhere serves no slim build. */
  warehouse: WarehouseIdentity;
  /** The command that builds the commit in full, for messages. */
  fullCommand: string;
  /** `nx run <project>:<promote target>`, for messages. */
  promoteCommand: string;
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
  reporter: Reporter,
): Promise<BuildRecord | undefined> {
  const record = readBuildRecord(paths.buildRecord);
  if (!record) return undefined;
  const served = request.deferTo === undefined ? servesSameKey(request, record) : servesSlim(request, record);
  if (!served || !existsSync(join(paths.targetPath, 'manifest.json')) || !record.profile) return undefined;
  const missing = await missingSchemas(request, record, paths, reporter);
  if (missing.length > 0) {
    reporter.info(`• the build of this commit made at ${record.startedAt} lost ${missing.join(', ')}: building again`);
    return undefined;
  }
  return record;
}

/** Another name of the commit: a plain full build asked for, recorded under the same key. */
function servesSameKey({ command, selection, expectedKey, rebuild }: ReuseRequest, record: BuildRecord): boolean {
  if (
    rebuild ||
    expectedKey === undefined ||
    selection.fullRefresh ||
    !isPlainFullBuild(buildContents(command, selection, false))
  )
    return false;
  return record.key === expectedKey && record.status === 'succeeded' && isPlainFullBuild(contentsOf(record));
}

/**
 * A slim build would write into the schemas and folder of the commit's full build (ADR 25): that
 * build holds everything the slim one would, so it serves it. One that would write otherwise
 * (vars, args, a full refresh, or dbt run again with --skip-nx-cache) is refused rather than let
 * it degrade the full build.
 */
function servesSlim(request: ReuseRequest, record: BuildRecord): boolean {
  const elsewhere = !sameWarehouse(record.warehouse, request.warehouse);
  if (record.status !== 'succeeded' || !isPlainFullBuild(contentsOf(record)) || elsewhere) return false;
  if (request.command !== 'build') return false;
  const varied = buildContents(request.command, request.selection, true).variedBy;
  const rewrites = [
    ...varied,
    ...(request.selection.fullRefresh ? ['--fullRefresh'] : []),
    ...(request.rebuild ? ['--skip-nx-cache'] : []),
  ];
  if (rewrites.length === 0) return true;
  throw new UserError(
    `this commit's full build (made at ${record.startedAt}) is in the schema a slim build of it writes to, and a slim build with ${rewrites.join(' and ')} would replace part of it: it already holds everything, so drop --deferTo, or build in full with those options (${request.fullCommand}).`,
  );
}

/** The build's schemas the warehouse no longer has; all of them when it cannot be asked. */
async function missingSchemas(
  request: ReuseRequest,
  record: BuildRecord,
  paths: BuildPaths,
  reporter: Reporter,
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
        promoteCommand: request.promoteCommand,
      }),
    );
    return schemas.filter((schema) => !existing.includes(schema));
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    reporter.info(`• could not look for the schemas of the build made at ${record.startedAt} (${errorMessage(error)})`);
    return schemas;
  }
}
