import { readdirSync, renameSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { markRebuilt, markSchemasDropped } from './key-marks';
import {
  buildKey,
  keyedBeforeRebuild,
  installedDbtPackages,
  issueKeyTokens,
  keyMismatchError,
  readKeyInputs,
  UNCACHEABLE,
  type BuildKeyRequest,
} from './key';
import { FAKE_SITE_PACKAGES as SITE_PACKAGES, writeFakeDbt } from '../testing/fake-dbt';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import { DEV_POSTGRES, profilesYaml } from '../testing/profiles';

const PROFILES = profilesYaml('analytics', { dev: DEV_POSTGRES });

describe('buildKey', () => {
  let workspaceRoot: string;
  let request: BuildKeyRequest;

  beforeEach(() => {
    workspaceRoot = makeTempDir();
    writeFiles(workspaceRoot, { 'analytics/profiles.yml': PROFILES });
    writeFakeDbt(workspaceRoot);
    request = {
      workspaceRoot,
      project: 'analytics',
      projectRoot: 'analytics',
      commit: 'a'.repeat(40),
      env: { PATH: '' },
      homeDir: join(workspaceRoot, 'home'),
    };
  });
  afterEach(() => removeDir(workspaceRoot));

  const editProfiles = (from: string, to: string) =>
    writeFiles(workspaceRoot, { 'analytics/profiles.yml': PROFILES.replace(from, to) });

  it('uses the profiles.yml and dbt handed on instead of finding and reading them', () => {
    const inputs = readKeyInputs(request);
    expect(inputs.profiles).toEqual({ file: join(workspaceRoot, 'analytics', 'profiles.yml'), text: PROFILES });
    expect(buildKey({ ...request, inputs })).toBe(buildKey(request));
    const elsewhere = { ...inputs, profiles: { ...inputs.profiles, text: PROFILES.replace('dev_me', 'dev_you') } };
    expect(buildKey({ ...request, inputs: elsewhere })).not.toBe(buildKey(request));
    editProfiles('dev_me', 'dev_you');
    expect(buildKey(request)).toBe(buildKey({ ...request, inputs: elsewhere }));
  });

  it('is a sha-256 in hex, the same on every call', () => {
    const key = buildKey(request);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(buildKey(request)).toBe(key);
  });

  it('changes with the commit', () => {
    expect(buildKey({ ...request, commit: 'b'.repeat(40) })).not.toBe(buildKey(request));
  });

  it('changes with the commit a slim build defers to', () => {
    const slim = buildKey({ ...request, deferTo: 'c'.repeat(40) });
    expect(slim).not.toBe(buildKey(request));
    expect(buildKey({ ...request, deferTo: 'd'.repeat(40) })).not.toBe(slim);
  });

  it("changes each time a clean drops the schemas of the project's builds at the commit, and only then", () => {
    const before = buildKey(request);
    markSchemasDropped(workspaceRoot, 'other-project', request.commit);
    markSchemasDropped(workspaceRoot, 'analytics', 'b'.repeat(40));
    expect(buildKey(request)).toBe(before);
    markSchemasDropped(workspaceRoot, 'analytics', request.commit);
    const afterFirstDrop = buildKey(request);
    expect(afterFirstDrop).not.toBe(before);
    expect(buildKey(request)).toBe(afterFirstDrop);
    markSchemasDropped(workspaceRoot, 'analytics', request.commit);
    expect(buildKey(request)).not.toBe(afterFirstDrop);
  });

  it('changes each time a forced rebuild of the project at the commit starts, and only then', () => {
    const before = buildKey(request);
    markRebuilt(workspaceRoot, 'other-project', request.commit);
    markRebuilt(workspaceRoot, 'analytics', 'b'.repeat(40));
    expect(buildKey(request)).toBe(before);
    markRebuilt(workspaceRoot, 'analytics', request.commit);
    const afterFirstRebuild = buildKey(request);
    expect(afterFirstRebuild).not.toBe(before);
    expect(buildKey(request)).toBe(afterFirstRebuild);
    markRebuilt(workspaceRoot, 'analytics', request.commit);
    expect(buildKey(request)).not.toBe(afterFirstRebuild);
  });

  it('tells a key made before forced rebuilds that started since from any other key', () => {
    const beforeAny = buildKey(request);
    expect(keyedBeforeRebuild(request, beforeAny)).toBe(false);
    markRebuilt(workspaceRoot, 'analytics', request.commit);
    const afterFirst = buildKey(request);
    markRebuilt(workspaceRoot, 'analytics', request.commit);
    expect(keyedBeforeRebuild(request, beforeAny)).toBe(true);
    expect(keyedBeforeRebuild(request, afterFirst)).toBe(true);
    expect(keyedBeforeRebuild(request, buildKey({ ...request, commit: 'b'.repeat(40) }))).toBe(false);
  });

  it('changes with the version of a dbt package', () => {
    const before = buildKey(request);
    const siteDir = join(workspaceRoot, SITE_PACKAGES);
    renameSync(join(siteDir, 'dbt_duckdb-1.11.1.dist-info'), join(siteDir, 'dbt_duckdb-1.11.2.dist-info'));
    expect(buildKey(request)).not.toBe(before);
  });

  it("changes with the profile's schema, not with its password", () => {
    const before = buildKey(request);
    editProfiles('password: secret', 'password: hunter2');
    expect(buildKey(request)).toBe(before);
    editProfiles('schema: dev_me', 'schema: dev_you');
    expect(buildKey(request)).not.toBe(before);
  });

  it('cannot be computed for a location written as a template: each call gives a new key', () => {
    editProfiles('schema: dev_me', 'schema: "{{ target.name }}"');
    const key = buildKey(request);
    expect(key.startsWith(UNCACHEABLE)).toBe(true);
    expect(buildKey(request)).not.toBe(key);
  });

  describe('of a DuckDB build', () => {
    const filesUnder = (dir: string) => readdirSync(dir, { recursive: true }).map(String).sort();
    beforeEach(() => editProfiles('type: postgres', 'type: duckdb\n      path: warehouse.duckdb'));

    it('writes nothing: without its file token it is uncacheable, with it, the same on every call', () => {
      const before = filesUnder(workspaceRoot);
      expect(buildKey(request).startsWith(UNCACHEABLE)).toBe(true);
      expect(filesUnder(workspaceRoot)).toEqual(before);
      issueKeyTokens(request);
      const after = filesUnder(workspaceRoot);
      expect(after).toEqual(expect.arrayContaining([join('.dot', 'warehouses')]));
      const key = buildKey(request);
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(filesUnder(workspaceRoot)).toEqual(after);
      issueKeyTokens(request);
      expect(buildKey(request)).toBe(key);
    });
  });
});

describe('installedDbtPackages', () => {
  let root: string;
  beforeEach(() => {
    root = makeTempDir();
  });
  afterEach(() => removeDir(root));

  it("lists the dbt, DuckDB and psycopg distributions beside dbt's python, sorted", () => {
    const dbt = writeFakeDbt(root);
    writeFiles(root, {
      [`${SITE_PACKAGES}/psycopg2_binary-2.9.10.dist-info/METADATA`]: '',
      [`${SITE_PACKAGES}/DBT_Postgres-1.9.0.dist-info/METADATA`]: '',
      [`${SITE_PACKAGES}/dbt_core-1.11.16.data/x`]: '',
    });
    expect(installedDbtPackages(dbt)).toEqual([
      'dbt-core==1.11.16',
      'dbt-duckdb==1.11.1',
      'dbt-postgres==1.9.0',
      'duckdb==2.0.0',
      'psycopg2-binary==2.9.10',
    ]);
  });

  it('falls back to the real path and mtime of a dbt without a shebang', () => {
    writeFiles(root, { 'tools/dbt-real': 'not a script\n' });
    symlinkSync(join(root, 'tools/dbt-real'), join(root, 'dbt'));
    const real = join(root, 'tools/dbt-real');
    expect(installedDbtPackages(join(root, 'dbt'))).toEqual([`${real}@${statSync(real).mtimeMs}`]);
  });

  it('falls back to the real path and mtime when the shebang names a python without dist-info', () => {
    writeFiles(root, { 'bin/dbt': `#!${root}/empty/bin/python\n`, 'empty/lib/python3.11/site-packages/x.py': '' });
    const dbt = join(root, 'bin/dbt');
    expect(installedDbtPackages(dbt)).toEqual([`${dbt}@${statSync(dbt).mtimeMs}`]);
  });
});

describe('keyMismatchError', () => {
  const commit = 'b'.repeat(40);
  let workspaceRoot: string;
  beforeEach(() => (workspaceRoot = makeTempDir()));
  afterEach(() => removeDir(workspaceRoot));
  const mismatch = (keyedAt?: Date) =>
    keyMismatchError({ workspaceRoot, project: 'analytics', ref: 'main', commit, keyedAt });

  it("names a clean that dropped the commit's schemas after the key was computed", () => {
    const keyedAt = new Date(Date.now() - 1000);
    markSchemasDropped(workspaceRoot, 'analytics', commit);
    expect(mismatch(keyedAt).message).toMatch(
      /^a clean dropped the schemas of analytics at bbbbbbbbbbbb at \d{4}-\d\d-\d\dT[\d:.]+Z, after Nx computed this build's cache key: run the build again, which builds the commit anew\.$/,
    );
  });

  it('suspects a moved ref or a changed profile otherwise', () => {
    const moved = /^the cache key Nx computed before the build does not match commit bbbbbbbbbbbb \(did main move/;
    expect(mismatch(new Date()).message).toMatch(moved);
    markSchemasDropped(workspaceRoot, 'analytics', commit);
    expect(mismatch(new Date(Date.now() + 1000)).message).toMatch(moved);
    expect(mismatch(undefined).message).toMatch(moved);
  });
});
