import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import installTemplate from '../fixture-workspace/template';
import { REPO_ROOT, TEMPLATE_DIR } from '../fixture-workspace/paths';
import { createTestWorkspace, nxEnvironment } from '../fixture-workspace/workspace';
import {
  DBT,
  formatSeconds,
  machine as machineInfo,
  measure,
  pluginRevision,
  run,
  runsFromArgs,
  setupLine,
  stats,
  type Command,
  type Stats,
  writeResults,
  BENCH_GIT_ENV,
} from './support';

/**
 * The plugin's overhead, through public means only (the packaged plugin run by the nx CLI, git,
 * dbt): on the fixture, `nx run` against bare dbt and Nx's floor, without and with the Nx daemon;
 * inference on 500 generated dbt projects against a do-nothing plugin; and the pre-task hook's
 * time (Nx's own perf mark) for one requested build in workspaces of 10 and 500 projects.
 */

const ROOT = join(REPO_ROOT, 'tmp', 'bench-overhead');
const FIXTURE = join(ROOT, 'fixture');
const RESULT_NAME = process.env.BENCH_RESULT_NAME ?? 'overhead';
const GOALS = { pluginShareSeconds: 0.15, warmBeyondFloorSeconds: 0.1, coldBeyondFloorSeconds: 0.4 };
const EMPTY_PLUGIN = "exports.createNodesV2 = ['**/dbt_project.yml', async () => []];\n";
const HOOK_MARK = /Time taken for 'nx-dbt-isolated:preTasksExecution' ([\d.]+)ms/;

type Daemon = 'off' | 'on';
type FixtureCommand = 'nx' | 'dbt' | 'floor';

interface FixtureTimes {
  seconds: Record<FixtureCommand, number[]>;
  /** nx − dbt − floor, per round. */
  pluginShare: number[];
  /** When Nx printed `> nx run …`, and from then to the executor's first phase, per round. */
  untilTask: number[];
  taskToFirstPhase: number[];
}

interface InferenceTimes {
  plugin: { cold: number[]; warm: number[] };
  floor: { cold: number[]; warm: number[] };
}

async function main(): Promise<void> {
  const runs = runsFromArgs();
  // E2E_TARBALL may hold a plugin packed at another commit (the "before" run): it says which.
  const packedAt = process.env.BENCH_PLUGIN_COMMIT;
  const plugin = packedAt ? { commit: packedAt, modified: false } : pluginRevision();
  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  installTemplate();
  rmSync(ROOT, { recursive: true, force: true });
  mkdirSync(FIXTURE, { recursive: true });
  const fixture = await fixtureCommands();
  const fixtureTimes = { off: await timeFixture(runs, fixture, 'off'), on: await timeFixture(runs, fixture, 'on') };
  const large = generateWorkspace(500);
  const small = generateWorkspace(10);
  const inference = await timeInference(runs, large);
  const hookMs = { 10: await timeHook(runs, small), 500: await timeHook(runs, large) };
  const result = {
    date: new Date().toISOString(),
    runs,
    machine: machineInfo(FIXTURE),
    plugin,
    loadAverage: loadAverage(),
    goals: GOALS,
    fixture: fixtureTimes,
    inference,
    hookMs,
  };
  writeResults(RESULT_NAME, result, report(result));
}

/** The fixture workspace, built once, and the three commands each round times. */
async function fixtureCommands(): Promise<Record<FixtureCommand, Command>> {
  const ws = createTestWorkspace(undefined, FIXTURE);
  const nxBin = join(FIXTURE, 'node_modules', '.bin', 'nx');
  const env = nxEnvironment();
  const nx = (label: string, args: string[]): Command => ({ label, file: nxBin, args, cwd: FIXTURE, env });
  const warmup = await measure(nx('warm-up', ['run', 'analytics:isolated-build', '--ref=main']));
  const artifacts = /artifacts (\S+)/.exec(warmup.output)?.[1];
  if (!artifacts) throw new Error(`the warm-up build printed no artifacts path:\n${warmup.output}`);
  const buildDir = join(FIXTURE, artifacts, '..');
  const buildId = relative(join(FIXTURE, '.dot'), buildDir).split('/')[0];
  const dbtEnv: NodeJS.ProcessEnv = { ...env, DBT_SEND_ANONYMOUS_USAGE_STATS: 'false' };
  delete dbtEnv.DBT_TARGET;
  return {
    nx: nx('nx run analytics:isolated-build --ref=<sha> --skip-nx-cache', [
      'run',
      'analytics:isolated-build',
      `--ref=${ws.main}`,
      '--skip-nx-cache',
    ]),
    dbt: {
      label: 'dbt build (same commit, profile, warehouse)',
      file: DBT,
      args: [
        'build',
        ...['--project-dir', join(FIXTURE, '.dot', buildId, 'worktree', 'analytics')],
        ...['--profiles-dir', join(buildDir, 'profiles')],
        ...['--target', 'dev'],
        ...['--target-path', join(FIXTURE, '.dot', 'bench-dbt', 'target')],
        ...['--log-path', join(FIXTURE, '.dot', 'bench-dbt', 'logs')],
      ],
      cwd: join(FIXTURE, 'analytics'),
      env: dbtEnv,
    },
    floor: nx('nx show projects', ['show', 'projects', '--json']),
  };
}

/** One warm-up of each, then `runs` rounds of nx, dbt and the floor, with the daemon off or on. */
async function timeFixture(runs: number, commands: Record<FixtureCommand, Command>, daemon: Daemon) {
  const withDaemon = (command: Command): Command =>
    command.file === DBT ? command : { ...command, env: { ...command.env, NX_DAEMON: String(daemon === 'on') } };
  const daemonCommand = (verb: string) =>
    execFileSync(commands.floor.file, ['daemon', verb], { cwd: FIXTURE, env: withDaemon(commands.floor).env });
  if (daemon === 'on') daemonCommand('--start');
  try {
    for (const key of ['nx', 'dbt', 'floor'] as const) await measure(withDaemon(commands[key]));
    const times: FixtureTimes = {
      seconds: { nx: [], dbt: [], floor: [] },
      pluginShare: [],
      untilTask: [],
      taskToFirstPhase: [],
    };
    for (let round = 1; round <= runs; round++) {
      const nx = await timedNxRun(withDaemon(commands.nx));
      const [dbt, floor] = [await measure(commands.dbt), await measure(withDaemon(commands.floor))];
      times.seconds.nx.push(nx.seconds);
      times.seconds.dbt.push(dbt.seconds);
      times.seconds.floor.push(floor.seconds);
      times.pluginShare.push(nx.seconds - dbt.seconds - floor.seconds);
      times.untilTask.push(nx.taskStartedAt);
      times.taskToFirstPhase.push(nx.firstPhaseStartedAt - nx.taskStartedAt);
      console.log(
        `daemon ${daemon}, round ${round}/${runs}: nx ${nx.seconds.toFixed(2)}s, dbt ${dbt.seconds.toFixed(2)}s, floor ${floor.seconds.toFixed(2)}s`,
      );
    }
    return times;
  } finally {
    if (daemon === 'on') daemonCommand('--stop');
  }
}

/** An nx run, with when Nx started the task and when the executor's first timed phase began. */
async function timedNxRun(command: Command) {
  let taskStartedAt: number | undefined;
  let firstPhaseStartedAt: number | undefined;
  const onLine = (line: string, at: number) => {
    if (taskStartedAt === undefined && line.includes('> nx run ')) taskStartedAt = at;
    const phase = /• .+ \(([\d.]+)s\)/.exec(line);
    if (phase && firstPhaseStartedAt === undefined) firstPhaseStartedAt = at - Number(phase[1]);
  };
  const { seconds, output } = await measure(command, { onLine });
  if (taskStartedAt === undefined || firstPhaseStartedAt === undefined) {
    throw new Error(`the nx run printed no '> nx run' or phase line:\n${output}`);
  }
  return { seconds, taskStartedAt, firstPhaseStartedAt };
}

/**
 * A workspace of `projects` dbt projects `dbt/pNNN` (two models, a DuckDB profile each) with the
 * packaged plugin, committed; the do-nothing plugin beside it for the floor.
 */
function generateWorkspace(projects: number): string {
  const dir = join(ROOT, `workspace-${projects}`);
  const files = new Map<string, string>([
    ['package.json', json({ name: `bench-overhead-${projects}`, private: true })],
    ['.gitignore', 'node_modules\n.nx\n.dot\n*.duckdb\n'],
    ['nx.json', json({ plugins: ['nx-dbt-isolated'] })],
    ['tools/empty-plugin.js', EMPTY_PLUGIN],
  ]);
  for (let p = 0; p < projects; p++) {
    const name = `p${String(p).padStart(3, '0')}`;
    files.set(`dbt/${name}/dbt_project.yml`, `name: ${name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: ${name}\n`);
    files.set(
      `dbt/${name}/profiles.yml`,
      `${name}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: warehouse.duckdb\n      schema: main\n`,
    );
    files.set(`dbt/${name}/models/m0.sql`, `select ${p} as project_id\n`);
    files.set(`dbt/${name}/models/m1.sql`, `select * from {{ ref('m0') }}\n`);
  }
  for (const [path, content] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  symlinkSync(join(TEMPLATE_DIR, 'node_modules'), join(dir, 'node_modules'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, env: { ...process.env, ...BENCH_GIT_ENV } });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('-c', 'commit.gpgsign=false', 'commit', '-q', '-m', `${projects} dbt projects`);
  return dir;
}

function nxIn(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Command {
  return {
    label: `nx ${args.join(' ')}`,
    file: join(dir, 'node_modules', '.bin', 'nx'),
    args,
    cwd: dir,
    env: nxEnvironment(env),
  };
}

/**
 * `nx show projects --json` cold (Nx's workspace data, which holds the plugin's cache, removed)
 * and warm, with the plugin and with the do-nothing one, alternating which goes first.
 */
async function timeInference(runs: number, dir: string): Promise<InferenceTimes> {
  const times: InferenceTimes = { plugin: { cold: [], warm: [] }, floor: { cold: [], warm: [] } };
  const variants = { plugin: 'nx-dbt-isolated', floor: join(dir, 'tools', 'empty-plugin.js') };
  const show = nxIn(dir, ['show', 'projects', '--json']);
  const once = async (variant: keyof InferenceTimes) => {
    writeFileSync(join(dir, 'nx.json'), json({ plugins: [variants[variant]] }));
    rmSync(join(dir, '.nx', 'workspace-data'), { recursive: true, force: true });
    const cold = await measure(show);
    const warm = await measure(show);
    checkListed(variant, cold.output, warm.output);
    return { cold: cold.seconds, warm: warm.seconds };
  };
  await once('plugin');
  await once('floor');
  for (let round = 1; round <= runs; round++) {
    for (const variant of round % 2 ? (['plugin', 'floor'] as const) : (['floor', 'plugin'] as const)) {
      const { cold, warm } = await once(variant);
      times[variant].cold.push(cold);
      times[variant].warm.push(warm);
    }
    const t = (v: keyof InferenceTimes) =>
      `${times[v].cold[round - 1].toFixed(2)}s/${times[v].warm[round - 1].toFixed(2)}s`;
    console.log(`inference round ${round}/${runs}: cold/warm plugin ${t('plugin')}, floor ${t('floor')}`);
  }
  writeFileSync(join(dir, 'nx.json'), json({ plugins: [variants.plugin] }));
  return times;
}

function checkListed(variant: keyof InferenceTimes, ...outputs: string[]): void {
  for (const output of outputs) {
    const line = output.split('\n').find((l) => l.startsWith('['));
    const listed = (JSON.parse(line ?? '[]') as string[]).filter((name) => /^p\d{3}$/.test(name)).length;
    if ((variant === 'plugin') !== listed > 0)
      throw new Error(`nx show projects (${variant}) listed ${listed}:\n${output}`);
  }
}

/**
 * Nx's mark for the plugin's preTasksExecution (NX_PERF_LOGGING, daemon off) in `nx run
 * p000:isolated-build`: one real build first, then cache hits, so the hook is all that varies.
 */
async function timeHook(runs: number, dir: string): Promise<number[]> {
  const command = nxIn(dir, ['run', 'p000:isolated-build'], { NX_PERF_LOGGING: 'true' });
  await measure(command);
  const times: number[] = [];
  for (let round = 1; round <= runs; round++) {
    const { output } = await measure(command);
    const mark = HOOK_MARK.exec(output);
    if (!mark) throw new Error(`no preTasksExecution mark for nx-dbt-isolated:\n${output}`);
    times.push(Number(mark[1]));
  }
  console.log(`hook in ${relative(ROOT, dir)}: ${times.map((ms) => `${ms.toFixed(0)}ms`).join(', ')}`);
  return times;
}

function loadAverage(): string {
  return execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim();
}

interface Result {
  date: string;
  runs: number;
  machine: ReturnType<typeof machineInfo>;
  plugin: ReturnType<typeof pluginRevision>;
  loadAverage: string;
  fixture: Record<Daemon, FixtureTimes>;
  inference: InferenceTimes;
  hookMs: Record<10 | 500, number[]>;
}

function report(result: Result): string {
  const s = formatSeconds;
  const row = (label: string, { min, median, max }: Stats) => `| ${label} | ${s(min)} | ${s(median)} | ${s(max)} |`;
  const fixtureRows = (daemon: Daemon) => {
    const times = result.fixture[daemon];
    return [
      row(`daemon ${daemon}: nx run analytics:isolated-build`, stats(times.seconds.nx)),
      row(`daemon ${daemon}: bare dbt build`, stats(times.seconds.dbt)),
      row(`daemon ${daemon}: nx show projects (floor)`, stats(times.seconds.floor)),
      row(`daemon ${daemon}: **plugin share** nx − dbt − floor, per round`, stats(times.pluginShare)),
      row(`daemon ${daemon}: Nx until the task starts`, stats(times.untilTask)),
      row(`daemon ${daemon}: task start to the executor's first phase`, stats(times.taskToFirstPhase)),
    ];
  };
  const { plugin, floor } = result.inference;
  const beyond = (key: 'cold' | 'warm') => plugin[key].map((t, i) => t - floor[key][i]);
  const ms = (list: number[]) => {
    const { min, median: mid, max } = stats(list);
    return `| ${min.toFixed(0)} ms | ${mid.toFixed(0)} ms | ${max.toFixed(0)} ms |`;
  };
  return [
    '# The plugin’s overhead',
    '',
    setupLine(result.date, result.runs, result.plugin, result.machine),
    `Load average at the end: ${result.loadAverage}. Other processes shared the 2 cores.`,
    '',
    '| fixture | min | median | max |',
    '| --- | --- | --- | --- |',
    ...fixtureRows('off'),
    ...fixtureRows('on'),
    '',
    `Goal: plugin share ≤ ${GOALS.pluginShareSeconds} s, daemon off and on.`,
    '',
    '| 500 dbt projects: nx show projects --json | min | median | max |',
    '| --- | --- | --- | --- |',
    row('cold, the plugin', stats(plugin.cold)),
    row('cold, a do-nothing plugin', stats(floor.cold)),
    row('**cold, plugin − do-nothing**, per round', stats(beyond('cold'))),
    row('warm, the plugin', stats(plugin.warm)),
    row('warm, a do-nothing plugin', stats(floor.warm)),
    row('**warm, plugin − do-nothing**, per round', stats(beyond('warm'))),
    '',
    `Goals: warm ≤ ${GOALS.warmBeyondFloorSeconds} s, cold ≤ ${GOALS.coldBeyondFloorSeconds} s above the do-nothing plugin.`,
    '',
    '| preTasksExecution of `nx run p000:isolated-build` (Nx perf mark) | min | median | max |',
    '| --- | --- | --- | --- |',
    `| 10 projects ${ms(result.hookMs[10])}`,
    `| 500 projects ${ms(result.hookMs[500])}`,
    '',
  ].join('\n');
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

run('bench:overhead', main);
