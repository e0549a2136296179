import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../workspace/errors';
import { dropSchemas, promotedError, type SchemaDropRequest } from './schema-drop';
import { writeFakeWarehouseDbt, type FakeWarehouse } from '../testing/fake-warehouse-dbt';
import { makeTempDir, removeDir } from '../testing/git-repo';

describe('dropSchemas', () => {
  let workspaceRoot: string;
  let warehouse: FakeWarehouse;
  beforeEach(() => {
    workspaceRoot = makeTempDir();
    warehouse = writeFakeWarehouseDbt(workspaceRoot, ['main_abcd1234', 'main_abcd1234_marts', 'main']);
  });
  afterEach(() => removeDir(workspaceRoot));

  const request = (overrides: Partial<SchemaDropRequest> = {}): SchemaDropRequest => ({
    workspaceRoot,
    dbt: warehouse.dbt,
    profilesDir: '/ws/.dot/abcd1234/analytics/dev/profiles',
    profile: 'analytics',
    target: 'dev',
    schemas: ['main_abcd1234', 'main_abcd1234_marts', 'main_abcd1234_seeds'],
    drop: true,
    env: { PATH: '', DBT_TARGET: 'prod' },
    promoteCommand: 'nx run analytics:promote',
    ...overrides,
  });

  it("drops the schemas that exist through dbt with the build's profile and returns them", async () => {
    await expect(dropSchemas(request())).resolves.toEqual(['main_abcd1234', 'main_abcd1234_marts']);
    expect(warehouse.schemas()).toEqual(['main']);
    const [args] = warehouse.calls();
    expect(args.slice(0, 3)).toEqual(['--quiet', 'run-operation', 'nx_dbt_isolated_drop_schemas']);
    expect(JSON.parse(args[args.indexOf('--args') + 1])).toEqual({
      schemas: ['main_abcd1234', 'main_abcd1234_marts', 'main_abcd1234_seeds'],
      drop: true,
    });
    for (const [flag, value] of [
      ['--profiles-dir', '/ws/.dot/abcd1234/analytics/dev/profiles'],
      ['--profile', 'analytics'],
      ['--target', 'dev'],
    ]) {
      expect(args[args.indexOf(flag) + 1]).toBe(value);
    }
  });

  it('only looks when told not to drop, and leaves no generated project behind', async () => {
    await expect(dropSchemas(request({ drop: false }))).resolves.toEqual(['main_abcd1234', 'main_abcd1234_marts']);
    expect(warehouse.schemas()).toEqual(['main_abcd1234', 'main_abcd1234_marts', 'main']);
    const tmp = join(workspaceRoot, '.dot', 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });

  it('runs no dbt for no schemas', async () => {
    await expect(dropSchemas(request({ schemas: [] }))).resolves.toEqual([]);
    expect(warehouse.calls()).toEqual([]);
  });

  it('says in one line what dbt last said when it fails, and how to go on', async () => {
    warehouse.failWith('\u001b[31mDatabase Error\u001b[0m\n  connection to server at "db" failed\n');
    const error = await dropSchemas(request()).catch((caught: Error) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(
      'dbt could not drop schemas main_abcd1234, main_abcd1234_marts, main_abcd1234_seeds with /ws/.dot/abcd1234/analytics/dev/profiles/profiles.yml (connection to server at "db" failed): check that the warehouse is reachable with that profile, then run the clean again.',
    );
  });
});

describe('promotedError', () => {
  it('names the promote target as the plugin options call it', () => {
    expect(promotedError([['main_abcd1234', 'prod']], 'nx run analytics:publish').message).toBe(
      'promoted views read main_abcd1234 (by prod), so no schema was dropped: promote another commit to prod first (nx run analytics:publish --ref=<ref> --schema=prod), then clean again.',
    );
  });
});
