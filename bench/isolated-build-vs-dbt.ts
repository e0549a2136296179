import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, type } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import globalSetup from '../e2e/support/global-setup';
import { REPO_ROOT, VENV_BIN } from '../e2e/support/paths';
import { createTestWorkspace, nxEnvironment } from '../e2e/support/workspace';

const WORKSPACE = join(REPO_ROOT, 'tmp', 'bench-workspace');
const RESULTS = join(REPO_ROOT, 'bench', 'results');
const TIME = '/usr/bin/time';
const DBT = join(VENV_BIN, 'dbt');

interface Command {
  label: string;
  file: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

interface Sample {
  seconds: number;
  /** Peak RSS of the largest single process of the tree (GNU time's %M), in KiB. */
  rssKb?: number;
  output: string;
  /** When Nx printed '> nx run …', starting the task, in seconds from the start. */
  taskStartedAt?: number;
  /** The executor's timed phases, with when each line arrived, in seconds from the start. */
  phases: Phase[];
}

interface Phase {
  name: string;
  seconds: number;
  endedAt: number;
}

interface Stats {
  min: number;
  median: number;
  max: number;
}

interface Summary {
  seconds: Record<string, Stats>;
  peakRssMbMedian: Record<string, number> | null;
  /** Medians of the per-round nx / dbt and nx − dbt. */
  ratioMedian: number;
  overheadMedianSeconds: number;
  /** Where an nx run's time goes: see timeline(). */
  nxRunMedianSeconds: Record<string, number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a positive whole number, not ${values.runs}`);
  const memory = existsSync(TIME);
  if (!memory) console.log(`${TIME} is absent: peak memory is not measured.`);

  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  const plugin = pluginRevision();
  globalSetup();
  rmSync(WORKSPACE, { recursive: true, force: true });
  mkdirSync(WORKSPACE, { recursive: true });
  const ws = createTestWorkspace(undefined, WORKSPACE);
  const nxBin = join(WORKSPACE, 'node_modules', '.bin', 'nx');
  const nxEnv = nxEnvironment();

  const warmup = await measure(
    {
      label: 'warm-up',
      file: nxBin,
      args: ['run', 'analytics:isolated-build', '--ref=main'],
      cwd: WORKSPACE,
      env: nxEnv,
    },
    false,
  );
  const artifacts = /artifacts (\S+)/.exec(warmup.output)?.[1];
  if (!artifacts) throw new Error(`the warm-up build printed no artifacts path:\n${warmup.output}`);
  const buildDir = join(WORKSPACE, artifacts, '..');
  const buildId = relative(join(WORKSPACE, '.dot'), buildDir).split('/')[0];

  const dbtEnv: NodeJS.ProcessEnv = { ...nxEnv, DBT_SEND_ANONYMOUS_USAGE_STATS: 'false' };
  delete dbtEnv.DBT_TARGET;
  const commands: Record<'nx' | 'dbt' | 'nxFloor', Command> = {
    nx: {
      label: `nx run analytics:isolated-build --ref=${ws.main.slice(0, 12)}…`,
      file: nxBin,
      args: ['run', 'analytics:isolated-build', `--ref=${ws.main}`],
      cwd: WORKSPACE,
      env: nxEnv,
    },
    dbt: {
      label: 'dbt build (same commit, profile, warehouse)',
      file: DBT,
      args: [
        'build',
        ...['--project-dir', join(WORKSPACE, '.dot', buildId, 'worktree', 'analytics')],
        ...['--profiles-dir', join(buildDir, 'profiles')],
        ...['--target', 'dev'],
        ...['--target-path', join(WORKSPACE, '.dot', 'bench-dbt', 'target')],
        ...['--log-path', join(WORKSPACE, '.dot', 'bench-dbt', 'logs')],
      ],
      cwd: join(WORKSPACE, 'analytics'),
      env: dbtEnv,
    },
    nxFloor: {
      label: 'nx show projects (Nx start-up floor)',
      file: nxBin,
      args: ['show', 'projects'],
      cwd: WORKSPACE,
      env: nxEnv,
    },
  };
  await measure(commands.dbt, false);
  await measure(commands.nxFloor, false);

  const samples: Record<keyof typeof commands, Sample[]> = { nx: [], dbt: [], nxFloor: [] };
  for (let round = 1; round <= runs; round++) {
    for (const key of ['nx', 'dbt', 'nxFloor'] as const) samples[key].push(await measure(commands[key], memory));
    const [nx, dbt, floor] = [samples.nx, samples.dbt, samples.nxFloor].map((list) => list[round - 1].seconds);
    console.log(
      `round ${round}/${runs}: nx ${nx.toFixed(2)}s  dbt ${dbt.toFixed(2)}s  nx show projects ${floor.toFixed(2)}s`,
    );
  }

  const seconds = mapValues(samples, (list) => list.map((sample) => sample.seconds));
  const peakRssKb = memory ? mapValues(samples, (list) => list.map((sample) => sample.rssKb ?? NaN)) : null;
  const timelines = samples.nx.map(timeline);
  const summary: Summary = {
    seconds: mapValues(seconds, stats),
    peakRssMbMedian: peakRssKb ? mapValues(peakRssKb, (list) => median(list) / 1024) : null,
    ratioMedian: median(seconds.nx.map((nx, i) => nx / seconds.dbt[i])),
    overheadMedianSeconds: median(seconds.nx.map((nx, i) => nx - seconds.dbt[i])),
    nxRunMedianSeconds: Object.fromEntries(
      Object.keys(timelines[0]).map((step) => [step, median(timelines.map((t) => t[step]))]),
    ),
  };
  const result = {
    date: new Date().toISOString(),
    runs,
    machine: {
      os: `${type()} ${release()}`,
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      node: process.version,
      dbt: dbtVersion(),
      nx: JSON.parse(readFileSync(join(WORKSPACE, 'node_modules', 'nx', 'package.json'), 'utf8')).version as string,
    },
    plugin,
    commit: ws.main,
    commands: mapValues(commands, (c) => ({ cwd: relative(REPO_ROOT, c.cwd), argv: [c.file, ...c.args] })),
    memory: memory ? `peak RSS via ${TIME} -f %M (largest single process, KiB)` : `not measured: ${TIME} is absent`,
    seconds,
    peakRssKb,
    nxRuns: samples.nx.map(({ taskStartedAt, phases }, i) => ({ taskStartedAt, phases, steps: timelines[i] })),
    summary,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'isolated-build-vs-dbt.json'), JSON.stringify(result, null, 2) + '\n');
  const markdown = report(result.date, result.machine, runs, result.plugin, commands, summary);
  writeFileSync(join(RESULTS, 'isolated-build-vs-dbt.md'), markdown);
  console.log(`\n${markdown}`);
  console.log(`Written: bench/results/isolated-build-vs-dbt.json and .md`);
}

/** Runs one command to its end, timing the whole process; any exit but 0 fails the benchmark. */
function measure(command: Command, memory: boolean): Promise<Sample> {
  const rssFile = join(REPO_ROOT, 'tmp', 'bench-rss.txt');
  const [file, args] = memory
    ? [TIME, ['-f', '%M', '-o', rssFile, command.file, ...command.args]]
    : [command.file, command.args];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const child = spawn(file, args, { cwd: command.cwd, env: command.env });
    let output = '';
    const phases: Phase[] = [];
    let taskStartedAt: number | undefined;
    const reader = () => {
      let pending = '';
      return (chunk: Buffer) => {
        output += chunk;
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          if (taskStartedAt === undefined && line.includes('> nx run ')) taskStartedAt = elapsed();
          const [, name, time] = /• (.+) \(([\d.]+)s\)/.exec(line) ?? [];
          // Hashes (ref, checkout, schema) are dropped so that phases keep one name across runs.
          if (!name) continue;
          phases.push({ name: name.replace(/\s+\S*[0-9a-f]{8,}\S*$/, ''), seconds: +time, endedAt: elapsed() });
        }
      };
    };
    child.stdout.on('data', reader());
    child.stderr.on('data', reader());
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = elapsed();
      if (code !== 0) return reject(new Error(`${command.label} exited with ${code}:\n${output}`));
      const rssKb = memory ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) : undefined;
      resolve({ seconds, rssKb, output, taskStartedAt, phases });
    });
  });
}

/**
 * Splits one nx run along the lines it prints, timed as they arrive: Nx until it starts the task
 * ('> nx run …'), then until the executor's first '• phase (1.2s)' line (loading the executor,
 * finding dbt and the repository root), each phase, the gaps between phases (reading
 * dbt_project.yml, writing the profile and the build record), and what follows the last phase
 * (the final record, Nx's summary, exit).
 */
function timeline({ seconds, taskStartedAt, phases }: Sample): Record<string, number> {
  if (taskStartedAt === undefined || phases.length === 0) throw new Error("an nx run printed no '> nx run' or phases");
  const start = (phase: Phase) => phase.endedAt - phase.seconds;
  const steps: Record<string, number> = {
    'Nx until the task starts': taskStartedAt,
    'task start to the first phase': start(phases[0]) - taskStartedAt,
  };
  for (const phase of phases) steps[phase.name] = phase.seconds;
  steps['between phases'] = sum(phases.slice(1).map((phase, i) => start(phase) - phases[i].endedAt));
  steps['after the last phase'] = seconds - phases[phases.length - 1].endedAt;
  return steps;
}

function report(
  date: string,
  machine: { os: string; cpu: string; cpus: number; node: string; dbt: string; nx: string },
  runs: number,
  plugin: { commit: string; modified: boolean },
  commands: Record<string, Command>,
  summary: Summary,
): string {
  const s = (n: number) => `${n.toFixed(2).replace(/^-(0\.00)$/, '$1')} s`;
  const rows = Object.entries(commands).map(([key, command]) => {
    const { min, median, max } = summary.seconds[key];
    const rss = summary.peakRssMbMedian ? `${summary.peakRssMbMedian[key].toFixed(0)} MB` : 'n/a';
    return `| ${command.label} | ${s(min)} | ${s(median)} | ${s(max)} | ${rss} |`;
  });
  const steps = Object.entries(summary.nxRunMedianSeconds).map(([step, t]) => `| ${step} | ${s(t)} |`);
  return [
    `# nx isolated-build vs bare dbt build`,
    '',
    `${date}, ${runs} alternating rounds, plugin at ${plugin.commit.slice(0, 7)}${plugin.modified ? ' with changes' : ''}; ${machine.cpu} (${machine.cpus} CPUs), ${machine.os}, node ${machine.node}, dbt ${machine.dbt}, nx ${machine.nx}.`,
    '',
    '| command | min | median | max | peak RSS (median) |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `- median of per-round ratios nx / dbt: **${summary.ratioMedian.toFixed(3)}** (goal ≤ 1.05)`,
    `- median of per-round differences nx − dbt: **${s(summary.overheadMedianSeconds)}**`,
    '',
    "Where the nx run's time goes, along the executor's '• phase (Xs)' lines (medians; phases print 0.1 s steps):",
    '',
    '| step | median |',
    '| --- | --- |',
    ...steps,
    '',
  ].join('\n');
}

/** The repository's commit the plugin was packed from, and whether packages/ had changes on top. */
function pluginRevision(): { commit: string; modified: boolean } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  return { commit: git('rev-parse', 'HEAD'), modified: git('status', '--porcelain', '--', 'packages') !== '' };
}

function dbtVersion(): string {
  const out = execFileSync(DBT, ['--version'], {
    encoding: 'utf8',
    env: { ...process.env, DBT_SEND_ANONYMOUS_USAGE_STATS: 'false' },
  });
  const core = /installed:\s*(\S+)/.exec(out)?.[1] ?? 'unknown';
  const duckdb = /duckdb:\s*(\S+)/.exec(out)?.[1];
  return duckdb ? `${core} (dbt-duckdb ${duckdb})` : core;
}

function sum(list: number[]): number {
  return list.reduce((total, n) => total + n, 0);
}

function stats(list: number[]): Stats {
  return { min: Math.min(...list), median: median(list), max: Math.max(...list) };
}

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function mapValues<K extends string, V, W>(record: Record<K, V>, f: (value: V) => W): Record<K, W> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, f(value as V)])) as Record<K, W>;
}

main().catch((error: Error) => {
  console.error(`bench failed: ${error.message}`);
  process.exit(1);
});
