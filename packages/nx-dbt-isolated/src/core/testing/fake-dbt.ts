/** Test-only helper: a fake dbt install in a workspace's `.venv`. Nothing in the plugin imports this. */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { writeFiles } from './git-repo';

export const FAKE_SITE_PACKAGES = '.venv/lib/python3.11/site-packages';

/**
 * Writes `<root>/.venv/bin/dbt` (executable, its shebang naming the venv's python) and empty
 * `.dist-info` folders of dbt-core 1.11.16, dbt-duckdb 1.11.1, duckdb 2.0.0 and an unrelated
 * package. Returns the dbt's path.
 */
export function writeFakeDbt(root: string): string {
  const distInfos = [
    'dbt_core-1.11.16.dist-info',
    'dbt_duckdb-1.11.1.dist-info',
    'duckdb-2.0.0.dist-info',
    'requests-2.0.dist-info',
  ];
  writeFiles(root, {
    '.venv/bin/dbt': `#!${root}/.venv/bin/python\nimport sys\n`,
    ...Object.fromEntries(distInfos.map((info) => [`${FAKE_SITE_PACKAGES}/${info}/METADATA`, ''])),
  });
  const dbt = join(root, '.venv/bin/dbt');
  chmodSync(dbt, 0o755);
  return dbt;
}
