import { buildPaths, ensureDotFolder, type BuildPaths } from '../workspace/dot-layout';
import { writeBuildRecord, type BuildRecord } from './records';
import { reusableFullBuild, type ReuseRequest } from './reuse';
import { buildRecord } from '../testing/build-record';
import { writeFakeWarehouseDbt, type FakeWarehouse } from '../testing/fake-warehouse-dbt';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';

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
    warehouse: POSTGRES,
    fullCommand: 'nx run analytics:isolated-build --ref=main',
    promoteCommand: 'nx run analytics:promote',
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
  ])('never reuses for %s', async (_what, asked) => {
    await expect(reuse(fullRecord(), asked)).resolves.toBeUndefined();
    expect(warehouse.calls()).toEqual([]);
  });

  describe('a slim build of a commit built in full here (ADR 25)', () => {
    const slim = (asked: Partial<ReuseRequest> = {}) => ({ deferTo: 'v1', expectedKey: 'the-slim-key', ...asked });

    it('is served the full build, whatever its key: it holds everything the slim build would', async () => {
      await expect(reuse(fullRecord(), slim())).resolves.toMatchObject({ key: 'the-key', status: 'succeeded' });
      await expect(reuse(fullRecord(), slim({ selection: { select: ['customers'] } }))).resolves.toBeDefined();
      await expect(reuse(fullRecord(), slim({ expectedKey: undefined }))).resolves.toBeDefined();
    });

    it.each<[string, Partial<BuildRecord>]>([
      ['a partial build', { selection: { select: ['stg_orders'] } }],
      ['a failed build', { status: 'failed' }],
      ['a slim build', { deferredTo: { commit: 'f'.repeat(40), ref: 'v0', schema: 'analytics_ffffffff' } }],
      ['a build in another warehouse', { warehouse: { type: 'postgres', location: 'elsewhere:5432/test' } }],
    ])('runs over %s, which it cannot degrade', async (_what, overrides) => {
      await expect(reuse(fullRecord(overrides), slim())).resolves.toBeUndefined();
    });

    it('is refused in one line when it would write the full build otherwise', async () => {
      await expect(reuse(fullRecord(), slim({ selection: { vars: '{"x": 1}', fullRefresh: true } }))).rejects.toThrow(
        "this commit's full build (made at 2026-01-01T00:00:00.000Z) is in the schema a slim build of it writes to, and a slim build with --vars and --fullRefresh would replace part of it: it already holds everything, so drop --deferTo, or build in full with those options (nx run analytics:isolated-build --ref=main).",
      );
    });

    it('is refused in one line when --skip-nx-cache asks dbt to run it again over the full build', async () => {
      await expect(reuse(fullRecord(), slim({ rebuild: true }))).rejects.toThrow(
        'and a slim build with --skip-nx-cache would replace part of it: it already holds everything, so drop --deferTo',
      );
    });
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
