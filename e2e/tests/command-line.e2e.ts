import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { executeDuckDb, relationsIn, schemasIn } from '../support/duckdb';
import { commitBeside, git } from '../../fixture-workspace/repo';
import { VENV_BIN } from '../../fixture-workspace/paths';
import { outcome, SUCCEEDED } from '../support/outcome';
import { readBuildRecord } from '../support/workflows';
import { createTestWorkspace, type NxResult, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * Every option of isolated-build given on the `nx run` command line reaches the build, and the
 * key the plugin's hook computes before Nx hashes is the one the executor checks.
 */

const short = (sha: string) => sha.slice(0, 8);
const HIT = /Nx read the output from the cache/;
const MISMATCH = /does not match commit/;
const RESTORED = /restored the full build of [0-9a-f]{12} .* no dbt run/;
const DBT_RAN = /• dbt build into schema/;

interface RunResults {
  args: Record<string, unknown>;
  results: { unique_id: string }[];
}

describe('the command line means what it says', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  /** main plus a commit that adds selectors.yml and a folder only checkoutFolders brings. */
  let head: string;
  const build = (args: string[], env?: NodeJS.ProcessEnv) => ws.nx(['run', 'analytics:isolated-build', ...args], env);
  const runResults = (commit: string, dbtTarget = 'dev'): RunResults =>
    JSON.parse(
      readFileSync(join(ws.dir, '.dot', short(commit), 'analytics', dbtTarget, 'target', 'run_results.json'), 'utf8'),
    );
  const ran = (commit: string) => runResults(commit).results.map((result) => result.unique_id);

  beforeAll(() => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
    writeFileSync(
      join(ws.dir, 'analytics', 'selectors.yml'),
      'selectors:\n  - name: staging_only\n    definition:\n      method: path\n      value: models/staging\n',
    );
    mkdirSync(join(ws.dir, 'reference'));
    writeFileSync(join(ws.dir, 'reference', 'countries.csv'), 'code\nNL\n');
    git(ws.dir, 'add', '-A');
    git(ws.dir, 'commit', '-q', '-m', 'A selector, and reference data outside the project');
    head = git(ws.dir, 'rev-parse', 'HEAD');
    mkdirSync(join(ws.dir, 'profiles'));
    const profiles = readFileSync(join(ws.dir, 'analytics', 'profiles.yml'), 'utf8');
    writeFileSync(join(ws.dir, 'profiles', 'profiles.yml'), profiles.replace('schema: analytics\n', 'schema: alt\n'));
  });
  afterAll(() => ws.remove());

  function expectBuilt(result: NxResult): void {
    expect(result.output).not.toMatch(MISMATCH);
    expect(outcome(result)).toEqual(SUCCEEDED);
  }

  it('carries --exclude of nx run, which Nx takes for itself, to dbt and into the key', async () => {
    const excluding = await build(['--ref=v1.0', '--exclude=countries']);
    expectBuilt(excluding);
    const schema = `analytics_${short(ws.v1)}`;
    expect(relationsIn(warehouse, schema)).not.toContain(`${schema}.countries`);
    expect(relationsIn(warehouse, schema)).toContain(`${schema}.customers`);

    const full = await build(['--ref=v1.0']);
    expectBuilt(full);
    expect(full.output).not.toMatch(HIT);
    expect(relationsIn(warehouse, schema)).toContain(`${schema}.countries`);
  });

  /**
   * One option on the command line, and what shows that the build honoured it. The partial
   * builds of the last commit come after full ones, whose relations their tests and models read.
   */
  const OPTIONS: { option: string; args: () => string[]; env?: () => NodeJS.ProcessEnv; honoured: () => void }[] = [
    {
      option: 'ref',
      args: () => [`--ref=${ws.excludeReturned}`],
      honoured: () => expect(readBuildRecord(ws.dir, ws.excludeReturned)).toMatchObject({ status: 'succeeded' }),
    },
    {
      option: 'target',
      args: () => ['--target=ci', `--ref=${ws.averagePayment}`],
      honoured: () =>
        expect(schemasIn(join(ws.dir, 'analytics', 'ci.duckdb'), 'analytics_ci_')).toContain(
          `analytics_ci_${short(ws.averagePayment)}`,
        ),
    },
    {
      option: 'vars',
      args: () => ['--vars={"from_command_line": 1}'],
      honoured: () => expect(runResults(head).args.vars).toEqual({ from_command_line: 1 }),
    },
    {
      option: 'threads',
      args: () => ['--threads=1'],
      honoured: () => expect(runResults(head).args.threads).toBe(1),
    },
    {
      option: 'fullRefresh',
      args: () => ['--fullRefresh'],
      honoured: () => expect(runResults(head).args.full_refresh).toBe(true),
    },
    {
      option: 'args',
      args: () => ['--args=--fail-fast'],
      honoured: () => expect(runResults(head).args.fail_fast).toBe(true),
    },
    {
      option: 'command',
      args: () => ['--command=seed'],
      honoured: () => expect(ran(head).every((id) => id.startsWith('seed.'))).toBe(true),
    },
    {
      option: 'select',
      args: () => ['--select=stg_customers'],
      honoured: () =>
        expect(ran(head).filter((id) => id.startsWith('model.'))).toEqual(['model.analytics.stg_customers']),
    },
    {
      option: 'exclude (after --)',
      args: () => ['--', '--exclude=stg_orders'],
      honoured: () => expect(ran(head)).not.toContain('model.analytics.stg_orders'),
    },
    {
      option: 'selector',
      args: () => ['--selector=staging_only'],
      honoured: () =>
        expect(
          ran(head)
            .filter((id) => id.startsWith('model.'))
            .sort(),
        ).toEqual(STAGING_MODELS),
    },
    {
      option: 'deferTo',
      args: () => ['--deferTo=v1.0'],
      honoured: () => expect(readBuildRecord(ws.dir, head).deferredTo).toMatchObject({ commit: ws.v1 }),
    },
    {
      option: 'buildBase',
      args: () => [`--ref=${ws.main}`, `--deferTo=${ws.featureVip}`, '--buildBase'],
      honoured: () => expect(readBuildRecord(ws.dir, ws.featureVip)).toMatchObject({ status: 'succeeded' }),
    },
    {
      option: 'isolationExceptions',
      args: () => ['--isolationExceptions=countries'],
      honoured: () => expect(readBuildRecord(ws.dir, head)).toMatchObject({ status: 'succeeded' }),
    },
    {
      option: 'checkoutFolders',
      args: () => ['--checkoutFolders=reference'],
      honoured: () => expect(existsSync(join(ws.dir, '.dot', short(head), 'worktree', 'reference'))).toBe(true),
    },
    {
      option: 'sparseCheckout',
      args: () => [`--ref=${ws.main}`, '--sparseCheckout=false'],
      honoured: () => expect(readBuildRecord(ws.dir, ws.main).checkoutFolders).toBe('all'),
    },
    {
      option: 'profilesDir',
      args: () => ['--profilesDir=profiles'],
      honoured: () => expect(schemasIn(warehouse, 'alt_')).toContain(`alt_${short(head)}`),
    },
    {
      option: 'dbtExecutable',
      args: () => [`--dbtExecutable=${join(VENV_BIN, 'dbt')}`],
      // No dbt on PATH: the build finds dbt only through the option.
      env: () => ({ PATH: pathWithout(VENV_BIN) }),
      honoured: () => expect(readBuildRecord(ws.dir, head)).toMatchObject({ status: 'succeeded' }),
    },
  ];

  it.each(OPTIONS.map((entry) => [entry.option, entry] as const))(
    '--%s on nx run reaches the build, under the key the hook computed',
    async (_option, { args, env, honoured }) => {
      const result = await build(args(), env?.());
      expectBuilt(result);
      honoured();
    },
  );

  it('serves the same commit asked for by another name from the full build it already has, without dbt', async () => {
    const byName = await build(['--ref=main', '--skip-nx-cache']);
    expectBuilt(byName);
    expect(byName.output).toMatch(DBT_RAN);
    const made = readBuildRecord(ws.dir, head).startedAt;

    git(ws.dir, 'tag', 'release-candidate', head);
    for (const name of [head, head.slice(0, 10), 'release-candidate']) {
      const another = await build([`--ref=${name}`]);
      expectBuilt(another);
      expect(another.output).not.toMatch(HIT);
      expect(another.output).toMatch(RESTORED);
      expect(another.output).not.toMatch(DBT_RAN);
      expect(readBuildRecord(ws.dir, head).startedAt).toBe(made);
    }
  });

  it('gives the nested build of a command at a commit the profiles folder the command was given', async () => {
    // A commit nothing has built yet: its first build is the nested one.
    const fresh = commitBeside(ws.dir, head, 'alt-profile', 'A note', { 'analytics/NOTE.md': 'alt\n' });
    const args = [`--ref=${fresh}`, '--command=show', '--select=customers', '--profilesDir=profiles'];
    const shown = await ws.nx(['run', 'analytics:dbt', ...args]);
    expectBuilt(shown);
    expect(shown.output).toContain('> nx run analytics:isolated-build --ref=');
    expect(shown.output).toMatch(/Previewing node 'customers'/);
    expect(schemasIn(warehouse, `alt_${short(fresh)}`)).toContain(`alt_${short(fresh)}`);
    expect(readBuildRecord(ws.dir, fresh)).toMatchObject({ schema: `alt_${short(fresh)}`, status: 'succeeded' });
  });

  it('runs dbt for another name when the build it has is partial, or its schema is gone', async () => {
    expectBuilt(await build([`--ref=${ws.v1}`, '--select=stg_orders']));
    const afterPartial = await build(['--ref=refs/tags/v1.0']);
    expectBuilt(afterPartial);
    expect(afterPartial.output).not.toMatch(RESTORED);
    expect(afterPartial.output).toMatch(DBT_RAN);

    executeDuckDb(warehouse, `drop schema analytics_${short(ws.v1)}_finance cascade`);
    const afterDrop = await build([`--ref=${ws.v1.slice(0, 12)}`]);
    expectBuilt(afterDrop);
    expect(afterDrop.output).toMatch(/lost analytics_[0-9a-f]{8}_finance: building again/);
    expect(afterDrop.output).toMatch(DBT_RAN);
    expect(relationsIn(warehouse, `analytics_${short(ws.v1)}_finance`)).toHaveLength(2);
  });
});

const STAGING_MODELS = ['model.analytics.stg_customers', 'model.analytics.stg_orders', 'model.analytics.stg_payments'];

function pathWithout(folder: string): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && dir !== folder && !existsSync(join(dir, 'dbt')))
    .join(delimiter);
}
