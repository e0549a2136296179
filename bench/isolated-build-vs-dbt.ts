import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import installTemplate from '../fixture-workspace/template';
import { REPO_ROOT } from '../fixture-workspace/paths';
import { createTestWorkspace, nxEnvironment } from '../fixture-workspace/workspace';
import {
  DBT,
  formatSeconds,
  machine as machineInfo,
  mapValues,
  measure as measureRun,
  median,
  pluginRevision,
  recordedCommands,
  run,
  runsFromArgs,
  setupLine,
  stats,
  sum,
  TIME,
  writeResults,
  type Command,
  type Machine,
  type PluginRevision,
  type Run,
  type Stats,
} from './support';

const WORKSPACE = join(REPO_ROOT, 'tmp', 'bench-workspace');

interface Sample extends Run {
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
  const runs = runsFromArgs();
  const memory = existsSync(TIME);
  if (!memory) console.log(`${TIME} is absent: peak memory is not measured.`);

  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  const plugin = pluginRevision();
  installTemplate();
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
      label: `nx run analytics:isolated-build --ref=${ws.main.slice(0, 12)}… --skip-nx-cache`,
      file: nxBin,
      // Every round is a real build: a cache hit is measured by bench/cache-hit.ts.
      args: ['run', 'analytics:isolated-build', `--ref=${ws.main}`, '--skip-nx-cache'],
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
    machine: machineInfo(WORKSPACE),
    plugin,
    commit: ws.main,
    commands: recordedCommands(commands),
    memory: memory ? `peak RSS via ${TIME} -f %M (largest single process, KiB)` : `not measured: ${TIME} is absent`,
    seconds,
    peakRssKb,
    nxRuns: samples.nx.map(({ taskStartedAt, phases }, i) => ({ taskStartedAt, phases, steps: timelines[i] })),
    summary,
  };
  writeResults('isolated-build-vs-dbt', result, report(result.date, result.machine, runs, plugin, commands, summary));
}

/**
 * Runs one command to its end, timing the whole process, and notes when Nx starts the task and
 * when each of the executor's timed phases ends; any exit but 0 fails the benchmark.
 */
async function measure(command: Command, memory: boolean): Promise<Sample> {
  const phases: Phase[] = [];
  let taskStartedAt: number | undefined;
  const onLine = (line: string, at: number) => {
    if (taskStartedAt === undefined && line.includes('> nx run ')) taskStartedAt = at;
    const [, name, time] = /• (.+) \(([\d.]+)s\)/.exec(line) ?? [];
    // Hashes (ref, checkout, schema) are dropped so that phases keep one name across runs.
    if (!name) return;
    phases.push({ name: name.replace(/\s+\S*[0-9a-f]{8,}\S*$/, ''), seconds: +time, endedAt: at });
  };
  return { ...(await measureRun(command, { memory, onLine })), taskStartedAt, phases };
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
  machine: Machine,
  runs: number,
  plugin: PluginRevision,
  commands: Record<string, Command>,
  summary: Summary,
): string {
  const s = formatSeconds;
  const rows = Object.entries(commands).map(([key, command]) => {
    const { min, median, max } = summary.seconds[key];
    const rss = summary.peakRssMbMedian ? `${summary.peakRssMbMedian[key].toFixed(0)} MB` : 'n/a';
    return `| ${command.label} | ${s(min)} | ${s(median)} | ${s(max)} | ${rss} |`;
  });
  const steps = Object.entries(summary.nxRunMedianSeconds).map(([step, t]) => `| ${step} | ${s(t)} |`);
  return [
    `# nx isolated-build vs bare dbt build`,
    '',
    setupLine(date, runs, plugin, machine),
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

run('bench', main);
