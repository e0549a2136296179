import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { DBT_HOST_ENV, runThroughHost } from './host';
import { dbtPython } from './executable';
import { captureDbt } from './process';
import { duckDbConnection } from '../testing/dbt-connection';
import { makeTempDir, removeDir } from '../testing/git-repo';

const HOST_SCRIPT = join(__dirname, 'host.py');
/** dbt's import alone takes seconds on a loaded machine; a host starts by importing it. */
const STARTS_DBT_MS = 300_000;

/** A dbt project with one macro that prints an environment variable, and a DuckDB profile beside it. */
function writeProject(dir: string): string[] {
  mkdirSync(join(dir, 'project', 'macros'), { recursive: true });
  writeFileSync(
    join(dir, 'project', 'dbt_project.yml'),
    'name: host_spec\nversion: "1.0"\nconfig-version: 2\nprofile: nx_spec\nmacro-paths: ["macros"]\n',
  );
  writeFileSync(
    join(dir, 'project', 'macros', 'say.sql'),
    "{% macro say() %}{{ print('said ' ~ env_var('HOST_SPEC_WORD', 'nothing')) }}{% endmacro %}\n" +
      '{% macro spin() %}{% for i in range(1000000000) %}{% endfor %}{% endmacro %}\n',
  );
  duckDbConnection(dir);
  // A relative project folder: found only from the folder the command runs in.
  const common = ['--project-dir', 'project', '--profiles-dir', '.', '--target-path', 'target', '--log-path', 'logs'];
  return common;
}

function socketsIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.sock')) : [];
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Pids of the processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out === '' ? [] : out.split(/\s+/).map(Number);
}

function hostPids(tmp: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(HOST_SCRIPT) && line.includes(tmp))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

const DBT = join(__dirname, '..', '..', '..', '..', '..', '.venv', 'bin', 'dbt');
const withoutTimes = (output: string) => stripVTControlCharacters(output).replace(/\d\d:\d\d:\d\d\s+/g, '');

describe('the dbt host', () => {
  const python = dbtPython(DBT)!;
  let dir: string;
  let tmp: string;
  let args: string[];
  let env: NodeJS.ProcessEnv;
  const hostsDir = () => join(tmp, `nx-dbt-isolated-${process.getuid!()}`);
  const operation = (macro: string) => ['--quiet', 'run-operation', macro, ...args];

  beforeAll(async () => {
    dir = makeTempDir();
    tmp = makeTempDir();
    args = writeProject(dir);
    env = { ...env, TMPDIR: tmp };
    // The first command starts the host and runs dbt itself.
    expect(await runThroughHost(python, operation('say'), dir, env)).toBeUndefined();
    await until(() => socketsIn(hostsDir()).length === 1, STARTS_DBT_MS);
  }, STARTS_DBT_MS);
  afterAll(() => {
    for (const pid of hostPids(tmp)) process.kill(pid, 'SIGKILL');
    removeDir(dir);
    removeDir(tmp);
  });

  it(
    "runs a command in a child of the host, in the caller's folder and environment",
    async () => {
      const said = await runThroughHost(python, operation('say'), dir, { ...env, HOST_SPEC_WORD: 'second' });
      expect(said).toEqual({ code: 0, output: 'said second\n' });
      expect(await captureDbt(DBT, operation('say'), dir, { ...env, HOST_SPEC_WORD: 'third' })).toEqual({
        code: 0,
        output: 'said third\n',
      });
    },
    STARTS_DBT_MS,
  );

  it(
    'gives the exit code and the output dbt gives in a process of its own',
    async () => {
      const alone = spawnSync(DBT, operation('nope'), { cwd: dir, env, encoding: 'utf8' });
      const hosted = await runThroughHost(python, operation('nope'), dir, env);
      expect(alone.status).toBe(2);
      expect(hosted?.code).toBe(2);
      expect(withoutTimes(hosted!.output)).toBe(withoutTimes(alone.stdout + alone.stderr));
    },
    STARTS_DBT_MS,
  );

  it(
    'kills the command of a client that went away',
    async () => {
      const [host] = hostPids(tmp);
      const before = childrenOf(host);
      const client = createConnection(join(hostsDir(), socketsIn(hostsDir())[0]));
      await new Promise((resolve) => client.on('connect', resolve));
      client.write(JSON.stringify({ args: operation('spin'), cwd: dir, env, umask: 0o22, nonce: 'n' }) + '\n');
      await until(() => childrenOf(host).length > before.length, STARTS_DBT_MS);
      const [command] = childrenOf(host).filter((pid) => !before.includes(pid));
      client.destroy();
      await until(() => !childrenOf(host).includes(command), STARTS_DBT_MS);
      expect(hostPids(tmp)).toEqual([host]);
    },
    STARTS_DBT_MS,
  );

  it('is not used when turned off, nor where another user could enter its folder', async () => {
    expect(await runThroughHost(python, operation('say'), dir, { ...env, [DBT_HOST_ENV]: 'off' })).toBeUndefined();
    chmodSync(hostsDir(), 0o777);
    try {
      expect(await runThroughHost(python, operation('say'), dir, env)).toBeUndefined();
    } finally {
      chmodSync(hostsDir(), 0o700);
    }
    expect(socketsIn(hostsDir())).toHaveLength(1);
  });

  it(
    'ends once idle, removing its socket',
    async () => {
      const socket = join(tmp, 'idle.sock');
      const host = spawn(python, [HOST_SCRIPT, socket, '1'], { stdio: 'ignore' });
      const ended = new Promise<number | null>((resolve) => host.on('exit', resolve));
      await until(() => existsSync(socket), STARTS_DBT_MS);
      expect(await ended).toBe(0);
      expect(existsSync(socket)).toBe(false);
    },
    STARTS_DBT_MS,
  );
});
