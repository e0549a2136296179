import { locksDir } from '../workspace/dot-layout';
import { ifStopped, withLock } from '../workspace/lock';
import { duckDbFile, type WarehouseIdentity } from '../dbt/profiles';
import type { Reporter } from '../workspace/reporter';

/**
 * DuckDB lets one process open a database file for writing at a time, so whatever connects to a
 * file (builds, diffs, promotions) takes turns; other warehouses take concurrent sessions and
 * need no lock.
 */
export function withWarehouseLock<T>(
  workspaceRoot: string,
  warehouse: WarehouseIdentity,
  reporter: Reporter,
  work: () => Promise<T>,
  abandonWhen?: () => boolean,
): Promise<T> {
  const file = duckDbFile(warehouse);
  if (!file) return work();
  return withLock(locksDir(workspaceRoot), `duckdb-${file}`, work, {
    abandonWhen,
    onWait: (holder) =>
      reporter.info(
        `waiting for another build to finish writing ${file} (DuckDB allows one writer at a time)${ifStopped(holder)}`,
      ),
  });
}
