import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { DBT_HOST_ENV, hostedScriptArgs, runThroughHost } from './host';
import { dbtPython } from './executable';
import { captureDbt } from './process';
import { duckDbConnection } from '../testing/dbt-connection';
import { makeTempDir, removeDir } from '../testing/git-repo';

const HOST_SCRIPT = join(__dirname, 'host.py');
const HOST_CLIENT = join(__dirname, 'host-client.py');
/**
 * A script a client has the host run: says its parent, writes to stdout, stderr and descriptor 3,
 * answers a line read from descriptor 3, then waits for a signal or exits as told: `exit <code>`,
 * `kill <signal>` (itself), `fork <code>` (a forked copy exits 0 first), `osexit <code>` (no
 * unwinding), `raise`, `wait` (until SIGINT, then exit 130).
 */
const SCRIPT = `import os, signal, socket, sys, time
channel = socket.socket(fileno=3).makefile("rw")
print("parent", os.getppid(), "tty", sys.stdout.isatty(), flush=True)
print("on stderr", file=sys.stderr, flush=True)
channel.write("ready\\n"); channel.flush()
how = channel.readline().split()
if how[0] == "exit":
    sys.exit(int(how[1]))
if how[0] == "kill":
    os.kill(os.getpid(), int(how[1]))
if how[0] == "fork":
    copy = os.fork()
    if copy == 0:
        sys.exit(0)
    os.waitpid(copy, 0)
    sys.exit(int(how[1]))
if how[0] == "osexit":
    os._exit(int(how[1]))
if how[0] == "raise":
    raise RuntimeError("raised by the script")
try:
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
`;
/** dbt's import alone takes seconds on a loaded machine; a host starts by importing it. */
const STARTS_DBT_MS = 300_000;

/** A dbt project with macros that print an environment variable, a long line, or wait; a DuckDB profile beside it. */
function writeProject(dir: string): string[] {
  mkdirSync(join(dir, 'project', 'macros'), { recursive: true });
  writeFileSync(
    join(dir, 'project', 'dbt_project.yml'),
    'name: host_spec\nversion: "1.0"\nconfig-version: 2\nprofile: nx_spec\nmacro-paths: ["macros"]\n',
  );
  writeFileSync(
    join(dir, 'project', 'macros', 'say.sql'),
    "{% macro say() %}{{ print('said ' ~ env_var('HOST_SPEC_WORD', 'nothing')) }}{% endmacro %}\n" +
      "{% macro shout(length) %}{{ print('x' * length) }}{% endmacro %}\n" +
      // Runs for `seconds` (dbt's Jinja allows ranges of 100,000 at most), then prints 'waited'.
      '{% macro wait(seconds) %}{% set until = modules.datetime.datetime.now() + modules.datetime.timedelta(seconds=seconds) %}' +
      '{% for i in range(100000) %}{% if modules.datetime.datetime.now() > until %}{% break %}{% endif %}' +
      "{% for j in range(1000) %}{% endfor %}{% endfor %}{{ print('waited') }}{% endmacro %}\n",
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

/** The state letter of a process (R, S, T for stopped…), from /proc. */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
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
  const operation = (macro: string, macroArgs?: unknown) => [
    '--quiet',
    'run-operation',
    macro,
    ...(macroArgs === undefined ? [] : ['--args', JSON.stringify(macroArgs)]),
    ...args,
  ];
  const socketPath = () => join(hostsDir(), socketsIn(hostsDir())[0]);
  /** The host, its children now (multiprocessing's tracker), and the pid of the next command it starts. */
  const watchHost = () => {
    const [host] = hostPids(tmp);
    const before = childrenOf(host);
    const commandStarted = async () => {
      await until(() => childrenOf(host).length > before.length, STARTS_DBT_MS);
      return childrenOf(host).find((pid) => !before.includes(pid))!;
    };
    return { host, before, commandStarted };
  };

  beforeAll(async () => {
    dir = makeTempDir();
    tmp = makeTempDir();
    args = writeProject(dir);
    writeFileSync(join(dir, 'script.py'), SCRIPT);
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
    'gives output far larger than a socket buffer whole',
    async () => {
      const shouted = await runThroughHost(python, operation('shout', { length: 1_000_000 }), dir, env);
      expect(shouted?.code).toBe(0);
      expect(shouted?.output).toBe('x'.repeat(1_000_000) + '\n');
    },
    STARTS_DBT_MS,
  );

  it(
    'stops the command of a client that went away, or was stopped (Ctrl-C)',
    async () => {
      const { host, before, commandStarted } = watchHost();
      const client = createConnection(socketPath());
      await new Promise((resolve) => client.on('connect', resolve));
      client.write(
        JSON.stringify({ args: operation('wait', { seconds: 600 }), cwd: dir, env, umask: 0o22, nonce: 'n' }) + '\n',
      );
      const command = await commandStarted();
      client.destroy();
      await until(() => !childrenOf(host).includes(command), STARTS_DBT_MS);

      let stop = () => undefined as void;
      const stopped = runThroughHost(python, operation('wait', { seconds: 600 }), dir, env, (tell) => {
        stop = tell;
        return () => undefined;
      });
      await commandStarted();
      stop();
      expect((await stopped)?.code).toBeNull();
      await until(() => childrenOf(host).length === before.length, STARTS_DBT_MS);
      expect(hostPids(tmp)).toEqual([host]);
    },
    STARTS_DBT_MS,
  );

  /** The script through the host's client, on pipes; `tell` answers its "ready" on descriptor 3. */
  const startScript = (socket: string) => {
    const client = spawn(python, ['-I', '-S', HOST_CLIENT, socket, join(dir, 'script.py')], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const said = { stdout: '', stderr: '', channel: '' };
    client.stdout!.on('data', (chunk: Buffer) => (said.stdout += chunk));
    client.stderr!.on('data', (chunk: Buffer) => (said.stderr += chunk));
    const channel = client.stdio[3] as unknown as NodeJS.ReadWriteStream;
    channel.on('data', (chunk: Buffer) => (said.channel += chunk));
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      client.on('close', (code, signal) => resolve({ code, signal })),
    );
    const ready = () => until(() => said.channel === 'ready\n', STARTS_DBT_MS);
    const tell = (line: string) => channel.write(`${line}\n`);
    /** The script's pid, once it has said its parent. */
    const scriptPid = async (parent: number) => {
      await ready();
      return childrenOf(parent).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(HOST_SCRIPT))!;
    };
    return { client, said, ended, ready, tell, scriptPid };
  };
  const killAll = (client: ChildProcess) => client.exitCode === null && client.kill('SIGKILL');

  it(
    "runs a script in a child of the host on the client's descriptors, and exits as the script did",
    async () => {
      expect(hostedScriptArgs(python, env)).toEqual(['-I', '-S', HOST_CLIENT, socketPath()]);
      const [host] = hostPids(tmp);
      const run = startScript(socketPath());
      await run.ready();
      run.tell('exit 5');
      expect(await run.ended).toEqual({ code: 5, signal: null });
      expect(run.said).toEqual({ stdout: `parent ${host} tty False\n`, stderr: 'on stderr\n', channel: 'ready\n' });

      const killed = startScript(socketPath());
      await killed.ready();
      killed.tell('kill 15');
      expect(await killed.ended).toEqual({ code: null, signal: 'SIGTERM' });
    },
    STARTS_DBT_MS,
  );

  it(
    'ends as the script ends when it forks, exits without unwinding or raises, as a Python of its own would',
    async () => {
      const ends: Record<string, { code: number | null; signal: string | null }> = {};
      for (const how of ['fork 3', 'osexit 4', 'raise']) {
        const run = startScript(socketPath());
        await run.ready();
        run.tell(how);
        ends[how] = await run.ended;
        if (how === 'raise') expect(run.said.stderr).toMatch(/Traceback[\s\S]*RuntimeError: raised by the script/);
      }
      expect(ends).toEqual({
        'fork 3': { code: 3, signal: null },
        'osexit 4': { code: 4, signal: null },
        raise: { code: 1, signal: null },
      });
    },
    STARTS_DBT_MS,
  );

  it(
    'stops the script while its client is stopped, passes Ctrl-C on, and kills it with a killed client',
    async () => {
      const [host] = hostPids(tmp);
      const run = startScript(socketPath());
      const script = await run.scriptPid(host);
      run.tell('wait');
      try {
        run.client.kill('SIGSTOP');
        await until(() => stateOf(script) === 'T', STARTS_DBT_MS);
        run.client.kill('SIGCONT');
        await until(() => stateOf(script) !== 'T', STARTS_DBT_MS);
        run.client.kill('SIGINT');
        expect(await run.ended).toEqual({ code: 130, signal: null });
        expect(run.said.stdout).toContain('interrupted\n');
      } finally {
        killAll(run.client);
      }

      const killed = startScript(socketPath());
      const killedScript = await killed.scriptPid(host);
      killed.tell('wait');
      killed.client.kill('SIGKILL');
      await killed.ended;
      await until(() => !childrenOf(host).includes(killedScript), STARTS_DBT_MS);
    },
    STARTS_DBT_MS,
  );

  it(
    'runs the script as the client itself where no host listens',
    async () => {
      const run = startScript(join(tmp, 'no-host-here.sock'));
      await run.ready();
      run.tell('exit 0');
      expect(await run.ended).toEqual({ code: 0, signal: null });
      expect(run.said.stdout).toBe(`parent ${process.pid} tty False\n`);
    },
    STARTS_DBT_MS,
  );

  it(
    "keeps a command's own end when the host dies while it runs",
    async () => {
      const { host, commandStarted } = watchHost();
      const waited = runThroughHost(python, operation('wait', { seconds: 3 }), dir, env);
      await commandStarted();
      process.kill(host, 'SIGKILL');
      expect(await waited).toEqual({ code: 0, output: 'waited\n' });
      // Its socket is left, its pid dead: a build runs its script itself, and starts a host.
      expect(hostedScriptArgs(python, env)).toBeUndefined();
      // The next command finds no host: it runs dbt itself, and starts one.
      expect(await runThroughHost(python, operation('say'), dir, env)).toBeUndefined();
      await until(() => socketsIn(hostsDir()).length === 1 && hostPids(tmp).length === 1, STARTS_DBT_MS);
    },
    STARTS_DBT_MS,
  );

  it('is not used when turned off, where another user could enter its folder, or where its socket path is too long', async () => {
    expect(await runThroughHost(python, operation('say'), dir, { ...env, [DBT_HOST_ENV]: 'off' })).toBeUndefined();
    chmodSync(hostsDir(), 0o777);
    try {
      expect(await runThroughHost(python, operation('say'), dir, env)).toBeUndefined();
    } finally {
      chmodSync(hostsDir(), 0o700);
    }
    const deep = join(tmp, 'a-folder-whose-name-makes-the-socket-path-longer-than-the-system-allows');
    mkdirSync(deep);
    expect(await runThroughHost(python, operation('say'), dir, { ...env, TMPDIR: deep })).toBeUndefined();
    expect(readdirSync(deep)).toEqual([]);
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
