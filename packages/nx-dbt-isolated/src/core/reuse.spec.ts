import { buildPaths, ensureDotFolder, type BuildPaths } from './dot-layout';
import { writeBuildRecord, type BuildRecord } from './records';
import { reusableFullBuild, type ReuseRequest } from './reuse';
import { buildRecord } from './testing/build-record';
import { writeFakeWarehouseDbt, type FakeWarehouse } from './testing/fake-warehouse-dbt';
import { makeTempDir, removeDir, writeFiles } from './testing/git-repo';

const POSTGRES = { type: 'postgres', location: '127.0.0.1:5432/test' };
const SCHEMAS = ['analytics_abcd1234', 'analytics_abcd1234_finance'];

describe('reusableFullBuild', () => {
  let workspaceRoot: string;
  /** Outside the workspace, like a dbt of the machine. */
  let fakeDir: string;
  let warehouse: FakeWarehouse;
  let paths: BuildPaths;
  let lines: string[];
  const reporter = { info: (line: string) => lines.push(line) };

  beforeEach(() => {
    workspaceRoot = makeTempDir();
    ensureDotFolder(workspaceRoot);
    fakeDir = makeTempDir();
    warehouse = writeFakeWarehouseDbt(fakeDir, SCHEMAS);
    paths = buildPaths(workspaceRoot, 'abcd1234', 'analytics', 'dev');
    writeFiles(paths.targetPath, { 'manifest.json': '{"nodes": {}}' });
    lines = [];
  });
  afterEach(() => {
    removeDir(workspaceRoot);
    removeDir(fakeDir);
  });

  const fullRecord = (overrides: Partial<BuildRecord> = {}) =>
    buildRecord({
      key: 'the-key',
      profile: 'analytics',
      warehouse: POSTGRES,
      schemas: SCHEMAS,
      selection: {},
      ...overrides,
    });
  const request = (overrides: Partial<ReuseRequest> = {}): ReuseRequest => ({
    workspaceRoot,
    command: 'build',
    selection: { threads: 2 },
    expectedKey: 'the-key',
    dbt: warehouse.dbt,
    env: {},
    ...overrides,
  });
  const reuse = (record: BuildRecord, asked: Partial<ReuseRequest> = {}) => {
    writeBuildRecord(paths.buildRecord, record);
    return reusableFullBuild(request(asked), paths, reporter);
  };

  it('reuses a succeeded full build under the same key whose schemas all exist', async () => {
    await expect(reuse(fullRecord())).resolves.toMatchObject({ key: 'the-key', status: 'succeeded' });
    expect(warehouse.schemas()).toEqual(SCHEMAS);
  });

  it.each<[string, Partial<BuildRecord>]>([
    ['another key', { key: 'another-key' }],
    ['a failed build', { status: 'failed' }],
    ['a seed', { command: 'seed' }],
    ['a --select build', { selection: { select: ['stg_orders'] } }],
    ['an --exclude build', { selection: { exclude: ['countries'] } }],
    ['a build with vars', { selection: { vars: '{"x": 1}' } }],
    ['a build with args', { selection: { extraArgs: ['--empty'] } }],
    ['a slim build', { deferredTo: { commit: 'f'.repeat(40), ref: 'v1', schema: 'analytics_ffffffff' } }],
    ['a record that does not say what it selected', { selection: undefined }],
  ])('never reuses %s', async (_what, overrides) => {
    await expect(reuse(fullRecord(overrides))).resolves.toBeUndefined();
    expect(warehouse.calls()).toEqual([]);
  });

  it.each<[string, Partial<ReuseRequest>]>([
    ['an uncached build', { expectedKey: undefined }],
    ['--skip-nx-cache', { rebuild: true }],
    ['a full refresh', { selection: { fullRefresh: true } }],
    ['a --select', { selection: { select: ['orders'] } }],
    ['another command', { command: 'run' }],
    ['a slim build', { deferTo: 'main' }],
  ])('never reuses for %s', async (_what, asked) => {
    await expect(reuse(fullRecord(), asked)).resolves.toBeUndefined();
    expect(warehouse.calls()).toEqual([]);
  });

  it('runs dbt again when a schema of the build is gone, and says which', async () => {
    warehouse = writeFakeWarehouseDbt(fakeDir, [SCHEMAS[0]]);
    await expect(reuse(fullRecord())).resolves.toBeUndefined();
    expect(lines).toEqual([
      `• the build of this commit made at 2026-01-01T00:00:00.000Z lost ${SCHEMAS[1]}: building again`,
    ]);
  });

  it('runs dbt again when the warehouse cannot be asked', async () => {
    warehouse.failWith('could not connect');
    await expect(reuse(fullRecord())).resolves.toBeUndefined();
    expect(lines[0]).toMatch(/^• could not look for the schemas of the build made at 2026-01-01T00:00:00.000Z \(/);
    expect(lines[1]).toMatch(/lost analytics_abcd1234, analytics_abcd1234_finance: building again$/);
  });
});
