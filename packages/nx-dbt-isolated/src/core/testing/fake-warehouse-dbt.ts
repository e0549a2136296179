/**
 * Test-only helper: a dbt that answers the schema-drop operation, and the claims release of
 * warehouse/claims.ts as a warehouse holding no claims table would, from a JSON list of schemas; any other
 * SQL gets no rows.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFiles } from './git-repo';

export interface FakeWarehouse {
  dbt: string;
  /** The schemas the fake warehouse holds now. */
  schemas(): string[];
  /** Every dbt command line it received. */
  calls(): string[][];
  /** Makes every later dbt call fail, as an unreachable warehouse would, or work again. */
  failWith(message: string | undefined): void;
}

/**
 * Writes `<root>/fake-dbt/dbt`, a node script that reads `--args` of `run-operation` like the
 * plugin's drop macro: prints the marker line with the schemas that exist and, when asked to,
 * removes them from `<root>/fake-dbt/schemas.json`.
 */
export function writeFakeWarehouseDbt(root: string, schemas: string[]): FakeWarehouse {
  const dir = join(root, 'fake-dbt');
  const files = { schemas: join(dir, 'schemas.json'), calls: join(dir, 'calls.jsonl'), failure: join(dir, 'failure') };
  writeFiles(dir, {
    'schemas.json': JSON.stringify(schemas),
    'calls.jsonl': '',
    failure: '',
    dbt: `#!${process.execPath}
const fs = require('fs');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(files.calls)}, JSON.stringify(args) + '\\n');
const failure = fs.readFileSync(${JSON.stringify(files.failure)}, 'utf8');
if (failure) { console.log(failure); process.exit(2); }
const operation = JSON.parse(args[args.indexOf('--args') + 1]);
if (operation.statements) { console.log('nx-dbt-isolated-result:' + JSON.stringify(operation.statements.map(() => ({ columns: [], rows: [] })))); process.exit(0); }
const builds = operation.builds ?? [];
const schemas = operation.schemas ?? builds.filter((build) => build.builtHere).flatMap((build) => build.schemas);
const claimed = Object.fromEntries(builds.filter((build) => !build.builtHere).map((build) => [build.schema, []]));
const drop = operation.drop ?? true;
const held = JSON.parse(fs.readFileSync(${JSON.stringify(files.schemas)}, 'utf8'));
const existing = schemas.filter((schema) => held.includes(schema));
if (drop) fs.writeFileSync(${JSON.stringify(files.schemas)}, JSON.stringify(held.filter((s) => !existing.includes(s))));
console.log('nx-dbt-isolated-result:' + JSON.stringify({ existing, promoted: [], claimed }));
`,
  });
  chmodSync(join(dir, 'dbt'), 0o755);
  return {
    dbt: join(dir, 'dbt'),
    schemas: () => JSON.parse(readFileSync(files.schemas, 'utf8')),
    calls: () =>
      readFileSync(files.calls, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
    failWith: (message) => writeFileSync(files.failure, message ?? ''),
  };
}
