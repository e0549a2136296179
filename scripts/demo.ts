import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import installTemplate from '../fixture-workspace/template';
import { queryDuckDb } from '../fixture-workspace/duckdb';
import { REPO_ROOT } from '../fixture-workspace/paths';
import { createTestWorkspace, runNx, type NxResult } from '../fixture-workspace/workspace';

const DEMO_DIR = join(REPO_ROOT, 'tmp', 'demo');
const REFS = ['v1.0', 'main'];

interface BuildRecord {
  commit: string;
  buildId: string;
  schemas: string[];
  warehouse: { location: string };
}

async function main(): Promise<void> {
  console.log('Packing the plugin and installing it with Nx into a demo workspace…');
  installTemplate();
  const nx = demoWorkspace();
  console.log(
    `Demo workspace: ${relative(process.cwd(), DEMO_DIR)} (a git repository with tag v1.0 and branch main)\n`,
  );

  const landed: string[] = [];
  for (const ref of REFS) {
    console.log(`$ nx run analytics:isolated-build --ref=${ref}`);
    const result = await nx(['run', 'analytics:isolated-build', `--ref=${ref}`]);
    if (result.code !== 0) throw new Error(`the build of ${ref} failed (output above)`);
    landed.push(describeBuild(DEMO_DIR, ref, result.output));
  }
  console.log(`\n${landed.join('\n\n')}\n`);

  console.log(`$ nx run analytics:diff --base=${REFS[0]} --head=${REFS[1]}`);
  const diff = await nx(['run', 'analytics:diff', `--base=${REFS[0]}`, `--head=${REFS[1]}`]);
  if (diff.code !== 0) throw new Error('the diff of the two builds failed (output above)');

  const warehouse = relative(DEMO_DIR, join(DEMO_DIR, 'analytics', 'warehouse.duckdb'));
  console.log(
    [
      '',
      `Try more, in ${relative(process.cwd(), DEMO_DIR)}:`,
      '  npx nx run analytics:isolated-build --ref=feature/vip        another commit, another schema',
      '  npx nx run analytics:promote --ref=main --schema=analytics --dryRun   what promoting main would do',
      '  npx nx run analytics:clean --keep=1 --dryRun                 what cleaning would drop',
      '  npx nx run analytics:docs --ref=main                         main’s dbt docs, served at http://127.0.0.1:8080',
      '  npx nx run analytics:dbt --ref=v1.0 --command=show --select=customers   dbt show on v1.0’s build',
      `  .venv/bin/python -c "import duckdb; print(duckdb.connect('${warehouse}').sql('show all tables'))"`,
      'Run npm run demo again: the workspace stays, so both builds are hits of Nx’s cache.',
    ].join('\n'),
  );
}

/**
 * The demo workspace, kept from the run before when there is one (so that its Nx cache serves
 * the second run), else made afresh; its nx runs with output streamed.
 */
function demoWorkspace(): (args: string[]) => Promise<NxResult> {
  const run = (args: string[]) => runNx(DEMO_DIR, args, {}, true);
  if (existsSync(join(DEMO_DIR, '.git')) && existsSync(join(DEMO_DIR, 'node_modules', '.bin', 'nx'))) {
    console.log('Keeping the demo workspace of the run before, with its builds and Nx cache.');
    return run;
  }
  rmSync(DEMO_DIR, { recursive: true, force: true });
  mkdirSync(DEMO_DIR, { recursive: true });
  createTestWorkspace(undefined, DEMO_DIR);
  // The plugin's default dbt is <workspaceRoot>/.venv/bin/dbt: lend it the repository's venv.
  symlinkSync(join(REPO_ROOT, '.venv'), join(DEMO_DIR, '.venv'));
  appendFileSync(join(DEMO_DIR, '.git', 'info', 'exclude'), '.venv\n');
  return run;
}

function describeBuild(dir: string, ref: string, output: string): string {
  const artifacts = /artifacts (\S+)/.exec(output)?.[1];
  if (!artifacts) throw new Error(`the build of ${ref} printed no artifacts path`);
  const record = JSON.parse(readFileSync(join(dir, artifacts, '..', 'build.json'), 'utf8')) as BuildRecord;
  const tables = queryDuckDb<{ relation: string; kind: string }>(
    record.warehouse.location,
    `select table_schema || '.' || table_name as relation, lower(table_type) as kind
     from information_schema.tables where table_schema in (${record.schemas.map((s) => `'${s}'`).join(', ')})
     order by 1`,
  );
  const rows = tables.map(({ relation, kind }) => {
    const count = queryDuckDb<{ n: number }>(record.warehouse.location, `select count(*) as n from ${relation}`)[0].n;
    return `    ${relation.padEnd(48)} ${kind.padEnd(10)} ${count} rows`;
  });
  return [
    `ref ${ref}`,
    `  commit      ${record.commit}`,
    `  schemas     ${record.schemas.join(', ')}`,
    `  warehouse   ${relative(process.cwd(), record.warehouse.location)}`,
    `  target path ${join(relative(process.cwd(), dir), artifacts)}`,
    `  tables:`,
    ...rows,
  ].join('\n');
}

main().catch((error: Error) => {
  console.error(`demo failed: ${error.message}`);
  process.exit(1);
});
