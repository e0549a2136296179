import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { git } from '../../fixture-workspace/repo';
import { VENV_BIN } from '../../fixture-workspace/paths';
import { dropSchemasStartingWith, schemasStartingWith, withPostgres } from '../support/postgres';
import { startRemoteCacheServer, type RemoteCacheServer } from '../support/remote-cache-server';
import { cloneWorkspace, createTestWorkspace, runNx, type TestWorkspace } from '../../fixture-workspace/workspace';

/** The bytes Nx uploaded, decompressed where they are gzip. */
function uploadedText(body: Buffer): string {
  const gzip = body[0] === 0x1f && body[1] === 0x8b;
  return (gzip ? gunzipSync(body) : body).toString('latin1');
}

describe('a remote cache shared by two clones, on a shared PostgreSQL warehouse', () => {
  const schema = `nxdbt_e2e_${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let server: RemoteCacheServer;
  let ws: TestWorkspace;
  let cloneB: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startRemoteCacheServer();
    ws = createTestWorkspace();
    cloneB = cloneWorkspace(ws.dir);
    env = {
      NX_SELF_HOSTED_REMOTE_CACHE_SERVER: server.url,
      NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: server.token,
      ANALYTICS_PG_SCHEMA: schema,
      ANALYTICS_PG_PASSWORD: password,
    };
  });
  afterAll(async () => {
    await server.close();
    await dropSchemasStartingWith(schema);
    ws.remove();
    rmSync(cloneB, { recursive: true, force: true });
  });

  it('serves clone B the build clone A made, with a manifest B can defer to', async () => {
    const isolated = `${schema}_${ws.main.slice(0, 8)}`;
    const build = ['run', 'analytics:isolated-build', '--ref=main', '--target=pg'];

    // The cache server runs in this process: nx must not block its event loop. Each clone
    // keeps its own local cache, as on two machines (Nx 23 shares one between clones here).
    const builtA = await runNx(ws.dir, build, { ...env, NX_CACHE_DIRECTORY: join(ws.dir, '.nx', 'cache') });
    expect(builtA.code).toBe(0);
    expect(builtA.output).not.toMatch(/remote cache/);
    expect(await schemasStartingWith(isolated)).toEqual([isolated, `${isolated}_finance`, `${isolated}_raw`]);
    expect(server.uploads.size).toBeGreaterThan(0);

    const builtB = await runNx(cloneB, build, { ...env, NX_CACHE_DIRECTORY: join(cloneB, '.nx', 'cache') });
    expect(builtB.code).toBe(0);
    expect(builtB.output).toMatch(/nx run analytics:isolated-build --ref=main\s+\[remote cache\]/);
    expect(server.downloads.length).toBeGreaterThan(0);
    const stateDir = join(cloneB, '.dot', ws.main.slice(0, 8), 'analytics', 'pg', 'target');
    const manifest = readFileSync(join(stateDir, 'manifest.json'), 'utf8');
    expect(JSON.parse(manifest).nodes['model.analytics.customers'].schema).toBe(isolated);

    // In clone B, change one model and build only it, deferring everything else to the build
    // clone A made: dbt reads the restored manifest, whatever paths of clone A it holds.
    const countries = join(cloneB, 'analytics', 'models', 'marts', 'countries.sql');
    writeFileSync(
      countries,
      readFileSync(countries, 'utf8').replace('count(*) as customer_count', 'count(*) as customers'),
    );
    const dev = `${schema}_dev`;
    const dbt = (...args: string[]) =>
      spawnSync(join(VENV_BIN, 'dbt'), [...args, '--project-dir', '.', '--profiles-dir', '.', '--target', 'pg'], {
        cwd: join(cloneB, 'analytics'),
        env: { ...process.env, ...env, ANALYTICS_PG_SCHEMA: dev },
        encoding: 'utf8',
      });
    expect(dbt('deps').status).toBe(0);
    const deferred = dbt('build', '--select', 'state:modified', '--defer', '--favor-state', '--state', stateDir);
    expect(deferred.stdout).toMatch(/Done\. PASS=1 WARN=0 ERROR=0/);
    const rows = await withPostgres((client) =>
      client.query(`select country, customers from "${dev}".countries order by country`),
    );
    expect(rows.rows).toEqual([
      { country: 'GB', customers: '2' },
      { country: 'NL', customers: '1' },
      { country: 'US', customers: '3' },
    ]);
    expect(await schemasStartingWith(dev)).toEqual([dev]);
  });

  it('uploads no secret: the password given through env_var is in no cached file', () => {
    expect(server.uploads.size).toBeGreaterThan(0);
    const uploaded = [...server.uploads.values()].map(uploadedText);
    // The search reads the archives' contents: the build's own schema name is found in them.
    expect(uploaded.some((text) => text.includes(`${schema}_${ws.main.slice(0, 8)}`))).toBe(true);
    for (const text of uploaded) expect(text).not.toContain(password);
    expect(existsSync(join(ws.dir, '.dot', 'cache', 'analytics'))).toBe(true);
    expect(git(ws.dir, 'status', '--porcelain')).toBe('');
  });
});
