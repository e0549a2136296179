import { readJson, writeJsonAtomically } from './files';
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

export function writeBuildRecord(file: string, record: BuildRecord): void {
  writeJsonAtomically(file, record);
}

export function readBuildRecord(file: string): BuildRecord | undefined {
  return readJson<BuildRecord>(file);
}
