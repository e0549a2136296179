import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPaths } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { writeBuildRecord, type BuildRecord } from './records';
import { findDeferralBase, slimSelection, type DeferralRequest } from './slim';
import { buildRecord } from '../testing/build-record';

const BASE = 'abcd1234'.padEnd(40, '0');

describe('findDeferralBase', () => {
  let workspaceRoot: string;
  const request = (overrides: Partial<DeferralRequest> = {}): DeferralRequest => ({
    workspaceRoot,
    project: 'analytics',
    targetName: 'isolated-build',
    dbtTarget: 'dev',
    ref: 'main',
    commit: BASE,
    ...overrides,
  });
  const paths = () => buildPaths(workspaceRoot, 'abcd1234', 'analytics', 'dev');
  const recordBase = (overrides: Partial<BuildRecord> = {}, manifest = true) => {
    writeBuildRecord(paths().buildRecord, buildRecord({ commit: BASE, schema: 'analytics_abcd1234', ...overrides }));
    if (manifest) {
      mkdirSync(paths().targetPath, { recursive: true });
      writeFileSync(join(paths().targetPath, 'manifest.json'), '{}');
    }
  };

  beforeEach(() => (workspaceRoot = mkdtempSync(join(tmpdir(), 'slim-'))));
  afterEach(() => rmSync(workspaceRoot, { recursive: true, force: true }));

  it("finds the base's schema and target folder, the --state of the slim build", async () => {
    recordBase();
    expect(await findDeferralBase(request())).toEqual({
      commit: BASE,
      ref: 'main',
      schema: 'analytics_abcd1234',
      statePath: paths().targetPath,
    });
  });

  it('says how to build a missing base, naming the project, ref, commit and dbt target', async () => {
    const error = findDeferralBase(request());
    await expect(error).rejects.toBeInstanceOf(UserError);
    await expect(error).rejects.toThrow(
      'no isolated build of analytics at main (abcd1234) for dbt target dev to defer to: build it first (nx run analytics:isolated-build --ref=main), or add --buildBase.',
    );
  });

  it('builds a partial base in full when asked, running dbt again rather than keep the partial one', async () => {
    recordBase({ selection: { exclude: ['customers'] } });
    const orders: { rerun: boolean }[] = [];
    const base = await findDeferralBase(
      request({
        build: async (_commit, _dbtTarget, order) => {
          orders.push(order);
          recordBase({ selection: {} });
        },
      }),
    );
    expect(orders).toEqual([{ rerun: true }]);
    expect(base.schema).toBe('analytics_abcd1234');
  });

  it('builds a missing base when asked, then uses it', async () => {
    const builds: string[] = [];
    const base = await findDeferralBase(
      request({
        build: async (commit, dbtTarget) => {
          builds.push(`${commit} ${dbtTarget}`);
          recordBase();
        },
      }),
    );
    expect(builds).toEqual([`${BASE} dev`]);
    expect(base.schema).toBe('analytics_abcd1234');
  });

  it('refuses a base that failed, is itself slim, or lost its manifest', async () => {
    recordBase({ status: 'failed' });
    await expect(findDeferralBase(request())).rejects.toThrow(
      /for dbt target dev failed, so there is nothing to defer to/,
    );
    recordBase({ deferredTo: { commit: '1'.repeat(40), ref: 'v1', schema: 'analytics_11111111' } });
    await expect(findDeferralBase(request())).rejects.toThrow(/is a slim build/);
    recordBase({ command: 'compile', selection: {} });
    await expect(findDeferralBase(request())).rejects.toThrow(
      'the isolated build of analytics at main (abcd1234) for dbt target dev is a --command=compile build, which compiled the project and built nothing: build it in full (nx run analytics:isolated-build --ref=main --skip-nx-cache, without --command=compile; a cache hit would keep this partial build in place).',
    );
    recordBase({ selection: { select: ['stg_orders'] } });
    await expect(findDeferralBase(request())).rejects.toThrow(/is a --select build, which holds only part/);
    rmSync(paths().targetPath, { recursive: true });
    recordBase({}, false);
    await expect(findDeferralBase(request())).rejects.toThrow(/has no manifest.json/);
  });

  it('does not take the build of another dbt target, or a base build that still fails once rebuilt', async () => {
    recordBase();
    await expect(findDeferralBase(request({ dbtTarget: 'ci' }))).rejects.toThrow(/for dbt target ci to defer to/);
    const rebuild = findDeferralBase(request({ dbtTarget: 'ci', build: async () => undefined }));
    await expect(rebuild).rejects.toThrow(/no isolated build of analytics at main/);
  });
});

describe('slimSelection', () => {
  const base = {
    commit: BASE,
    ref: 'main',
    schema: 'analytics_abcd1234',
    statePath: '/ws/.dot/abcd1234/analytics/dev/target',
  };

  it("selects what changed and its children, deferring to the base's state in favour of it", () => {
    expect(slimSelection({ vars: '{a: 1}', extraArgs: ['--fail-fast'] }, base)).toEqual({
      vars: '{a: 1}',
      select: ['state:modified+'],
      extraArgs: ['--defer', '--state', base.statePath, '--favor-state', '--fail-fast'],
    });
  });

  it("keeps the user's own selection", () => {
    expect(slimSelection({ select: ['state:modified', 'tag:nightly'] }, base).select).toEqual([
      'state:modified',
      'tag:nightly',
    ]);
  });
});
