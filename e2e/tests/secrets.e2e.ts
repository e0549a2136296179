import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dropSchemasStartingWith, schemasStartingWith } from '../support/postgres';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';

/** Every file under `dir`, following no link: the checkout, records, profiles, dbt's logs and artifacts. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) return filesUnder(path);
    return stat.isFile() ? [path] : [];
  });
}

describe('a password given through env_var stays out of everything the plugin writes', () => {
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const schema = `nxdbt_secret_${randomBytes(4).toString('hex')}`;
  let ws: TestWorkspace;

  beforeAll(() => {
    ws = createTestWorkspace();
  });
  afterAll(async () => {
    await dropSchemasStartingWith(schema);
    ws.remove();
  });

  it('is in no file under .dot, in no cached output, in no output of the task, and the profile is private', async () => {
    const env = {
      ANALYTICS_PG_PASSWORD: password,
      ANALYTICS_PG_SCHEMA: schema,
      NX_CACHE_DIRECTORY: join(ws.dir, '.nx', 'cache'),
    };
    const result = await ws.nx(['run', 'analytics:isolated-build', '--ref=main', '--target=pg'], env);
    expect(result.output).toContain('Isolated build succeeded');
    expect(await schemasStartingWith(`${schema}_${ws.main.slice(0, 8)}`)).not.toEqual([]);

    const written = [...filesUnder(join(ws.dir, '.dot')), ...filesUnder(join(ws.dir, '.nx', 'cache'))];
    // A positive control: the search reads the generated profile, which names the variable.
    const profile = join(ws.dir, '.dot', ws.main.slice(0, 8), 'analytics', 'pg', 'profiles', 'profiles.yml');
    expect(written).toContain(profile);
    expect(readFileSync(profile, 'utf8')).toContain("{{ env_var('ANALYTICS_PG_PASSWORD', '') }}");
    expect(written.filter((file) => file.includes(`${join('pg', 'logs')}`)).length).toBeGreaterThan(0);

    const leaking = written.filter((file) => readFileSync(file).includes(password));
    expect(leaking).toEqual([]);
    expect(result.output).not.toContain(password);
    expect(statSync(profile).mode & 0o777).toBe(0o600);
    console.log(
      `secrets: searched ${written.length} files under .dot and the Nx cache; ${leaking.length} held the password`,
    );
  });
});
