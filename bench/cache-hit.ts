import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import installTemplate from '../fixture-workspace/template';
import { git } from '../fixture-workspace/repo';
import { REPO_ROOT } from '../fixture-workspace/paths';
import { createTestWorkspace, nxEnvironment } from '../fixture-workspace/workspace';
import {
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
  writeResults,
  type Command,
  type Machine,
  type PluginRevision,
  type Run,
  type Stats,
} from './support';

const WORKSPACE = join(REPO_ROOT, 'tmp', 'bench-cache-workspace');
const HIT = 'Nx read the output from the cache';
/** A cached target that does next to nothing: what any Nx cache hit costs. */
const TRIVIAL_PROJECT = {
  name: 'trivial',
  targets: {
    echo: { executor: 'nx:run-commands', options: { command: 'echo hi' }, cache: true, inputs: [], outputs: [] },
  },
};
const GOALS = { hitOverCold: 0.1, hitOverTrivial: 1.1 };

type Key = 'cold' | 'trivial' | 'hit';
const KEYS: Key[] = ['cold', 'trivial', 'hit'];

interface Sample extends Run {
  /** When Nx printed '> nx run …' for the task, in seconds from the start. */
  taskLineAt?: number;
}

interface Summary {
  seconds: Record<Key, Stats>;
  /** Medians of the per-round hit / cold, hit / trivial and hit − trivial. */
  hitOverColdMedian: number;
  hitOverTrivialMedian: number;
  hitMinusTrivialMedianSeconds: number;
  /** Medians of when each command printed '> nx run …': Nx's work before the task. */
  taskLineMedianSeconds: Record<Key, number>;
}

async function main(): Promise<void> {
  const runs = runsFromArgs();

  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  const plugin = pluginRevision();
  installTemplate();
  rmSync(WORKSPACE, { recursive: true, force: true });
  mkdirSync(WORKSPACE, { recursive: true });
  const ws = createTestWorkspace(undefined, WORKSPACE);
  mkdirSync(join(WORKSPACE, 'trivial'));
  writeFileSync(join(WORKSPACE, 'trivial', 'project.json'), JSON.stringify(TRIVIAL_PROJECT, null, 2) + '\n');
  git(WORKSPACE, 'add', 'trivial/project.json');
  git(WORKSPACE, 'commit', '-q', '-m', 'A trivial cached target');
  // Main is now the trivial project's commit, on top of the fixture's main: same dbt project.
  const commit = git(WORKSPACE, 'rev-parse', 'main');
  if (git(WORKSPACE, 'diff', '--name-only', ws.main, commit) !== 'trivial/project.json') {
    throw new Error('the trivial project commit changed more than trivial/project.json');
  }
  const nxBin = join(WORKSPACE, 'node_modules', '.bin', 'nx');
  const nxEnv = nxEnvironment();
  const nx = (label: string, ...args: string[]): Command => ({ label, file: nxBin, args, cwd: WORKSPACE, env: nxEnv });

  const build = ['run', 'analytics:isolated-build', `--ref=${commit}`];
  const shown = `nx run analytics:isolated-build --ref=${commit.slice(0, 12)}…`;
  const commands: Record<Key, Command> = {
    cold: nx(`(a) cold: ${shown} --skip-nx-cache`, ...build, '--skip-nx-cache'),
    trivial: nx('(b) trivial: nx run trivial:echo (cache hit)', 'run', 'trivial:echo'),
    hit: nx(`(c) hit: ${shown} (cache hit)`, ...build),
  };

  // The first build fills the cache and leaves the checkout, dbt deps and partial parse behind.
  console.log('Warming up: a real build, a rebuild without the cache, the trivial target…');
  await measure(commands.hit, 'miss');
  await measure(commands.cold, 'miss');
  await measure(commands.trivial, 'any');

  const samples: Record<Key, Sample[]> = { cold: [], trivial: [], hit: [] };
  for (let round = 1; round <= runs; round++) {
    samples.cold.push(await measure(commands.cold, 'miss'));
    // A forced rebuild joins the key (ADR 24): the next plain build is a miss that reuses it with
    // no dbt run and caches it under the new key. Not measured: the hit below is Nx's, as before.
    await measure(commands.hit, 'miss');
    samples.trivial.push(await measure(commands.trivial, 'hit'));
    samples.hit.push(await measure(commands.hit, 'hit'));
    const [a, b, c] = KEYS.map((key) => samples[key][round - 1].seconds);
    console.log(
      `round ${round}/${runs}: (a) cold ${a.toFixed(2)}s  (b) trivial ${b.toFixed(2)}s  (c) hit ${c.toFixed(2)}s`,
    );
  }

  const seconds = mapValues(samples, (list) => list.map((sample) => sample.seconds));
  const taskLineAt = mapValues(samples, (list) => list.map((sample) => sample.taskLineAt ?? NaN));
  const summary: Summary = {
    seconds: mapValues(seconds, stats),
    hitOverColdMedian: median(seconds.hit.map((c, i) => c / seconds.cold[i])),
    hitOverTrivialMedian: median(seconds.hit.map((c, i) => c / seconds.trivial[i])),
    hitMinusTrivialMedianSeconds: median(seconds.hit.map((c, i) => c - seconds.trivial[i])),
    taskLineMedianSeconds: mapValues(taskLineAt, median),
  };
  const result = {
    date: new Date().toISOString(),
    runs,
    machine: machineInfo(WORKSPACE),
    plugin,
    commit,
    fixtureMain: ws.main,
    commands: recordedCommands(commands),
    goals: GOALS,
    seconds,
    taskLineAt,
    summary,
  };
  writeResults('cache-hit', result, report(result.date, result.machine, runs, plugin, commands, summary));
}

/**
 * Runs one nx command, timing the whole process, and checks that Nx served it from its cache
 * ('hit') or did not ('miss'); noting when Nx printed the task's '> nx run …' line.
 */
async function measure(command: Command, expect: 'hit' | 'miss' | 'any'): Promise<Sample> {
  let taskLineAt: number | undefined;
  const onLine = (line: string, at: number) => {
    if (taskLineAt === undefined && line.includes('> nx run ')) taskLineAt = at;
  };
  const sample = { ...(await measureRun(command, { onLine })), taskLineAt };
  const hit = sample.output.includes(HIT);
  if (expect === 'hit' && !hit) throw new Error(`${command.label} was not a cache hit:\n${sample.output}`);
  if (expect === 'miss' && hit) throw new Error(`${command.label} was served from the cache:\n${sample.output}`);
  return sample;
}

function report(
  date: string,
  machine: Machine,
  runs: number,
  plugin: PluginRevision,
  commands: Record<Key, Command>,
  summary: Summary,
): string {
  const s = formatSeconds;
  const rows = KEYS.map((key) => {
    const { min, median, max } = summary.seconds[key];
    return `| ${commands[key].label} | ${s(min)} | ${s(median)} | ${s(max)} | ${s(summary.taskLineMedianSeconds[key])} |`;
  });
  const verdict = (value: number, goal: number) => `(goal ≤ ${goal}: ${value <= goal ? 'met' : 'not met'})`;
  return [
    `# Cache hits: nx isolated-build served from the Nx cache`,
    '',
    setupLine(date, runs, plugin, machine),
    '',
    "| command | min | median | max | '> nx run' printed (median) |",
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `- median of per-round ratios hit / cold: **${summary.hitOverColdMedian.toFixed(3)}** ${verdict(summary.hitOverColdMedian, GOALS.hitOverCold)}`,
    `- median of per-round ratios hit / trivial: **${summary.hitOverTrivialMedian.toFixed(3)}** ${verdict(summary.hitOverTrivialMedian, GOALS.hitOverTrivial)}`,
    `- median of per-round differences hit − trivial: **${s(summary.hitMinusTrivialMedianSeconds)}**`,
    '',
  ].join('\n');
}

run('bench', main);
