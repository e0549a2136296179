import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { WarehouseIdentity } from './profiles';
import type { RunResultsSummary } from './dbt';

export type BuildStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

/** One record per build of a project at a commit against a dbt target: what clean acts on. */
export interface BuildRecord {
  version: 1;
  commit: string;
  buildId: string;
  ref: string;
  project: string;
  dbtProject: string;
  target: string;
  command: string;
  warehouse: WarehouseIdentity;
  /** The target's schema renamed for this commit. */
  schema: string;
  /** Every schema the build's manifest materialises into: `schema` and its custom siblings. */
  schemas: string[];
  status: BuildStatus;
  /** The key Nx cached the build under, when it was cached. */
  key?: string;
  startedAt: string;
  endedAt?: string;
  results?: RunResultsSummary;
  error?: string;
  /** Set when the artifacts came from Nx's cache instead of a dbt run here. */
  restoredFromCacheAt?: string;
}

/** Written to a temporary file and renamed, so a reader never sees half a record. */
export function writeBuildRecord(file: string, record: BuildRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(record, null, 2) + '\n');
  renameSync(temporary, file);
}

export function readBuildRecord(file: string): BuildRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BuildRecord;
  } catch {
    return undefined;
  }
}
