import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkoutScope, ensureCheckout, removeCheckout, type CheckoutFolders } from './core';
import installTemplate from '../fixture-workspace/template';
import { REPO_ROOT, TEMPLATE_DIR } from '../fixture-workspace/paths';
import { nxEnvironment } from '../fixture-workspace/workspace';
import {
  formatSeconds,
  machine as machineInfo,
  mapValues,
  measure,
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
  type Stats,
  BENCH_GIT_ENV,
} from './support';

const ROOT = join(REPO_ROOT, 'tmp', 'bench-monorepo');
const WORKSPACE = join(ROOT, 'workspace');
const GRAPH_FILE = join(ROOT, 'graph.json');

const LAYOUT = { dbtProjects: 500, modelsPerProject: 20, services: 200, filesPerService: 100 };
const SHARED = { folder: 'shared/dbt_utils_local', name: 'dbt_utils_local' };
const OTHER_FILES =
  'plain .ts and .txt files under services/sNNN/src and services/sNNN/docs, none of them an Nx project';
/** The project whose checkout is timed. */
const CHECKOUT_PROJECT = 'dbt/p250';
const GOALS = { coldAddedSeconds: 1.5, warmAddedSeconds: 0.2, sparseOverFull: 0.2 };
/**
 * A plugin that does nothing, for what Nx charges any plugin. nx.json names it by its absolute
 * path: Nx 23 accepts `./tools/empty-plugin.js` too, but resolves a path inside the workspace by
 * loading its default plugins first (about 1 s here), which an installed plugin does not pay.
 */
const EMPTY_PLUGIN = {
  path: 'tools/empty-plugin.js',
  source: "exports.createNodesV2 = ['**/dbt_project.yml', async () => []];\n",
};

type Variant = 'with' | 'floor' | 'without';
const VARIANTS: Variant[] = ['with', 'floor', 'without'];
const NX_JSON: Record<Variant, { plugins: string[] }> = {
  with: { plugins: ['nx-dbt-isolated'] },
  floor: { plugins: [join(WORKSPACE, EMPTY_PLUGIN.path)] },
  without: { plugins: [] },
};
/** The differences reported, each variant a − variant b. */
const DIFFERENCES = {
  /** The plugin's added time, which the goals are about. */
  added: ['with', 'without'],
  /** What any plugin costs: the do-nothing one. */
  floor: ['floor', 'without'],
  /** What this plugin adds beyond that. */
  beyondFloor: ['with', 'floor'],
} as const satisfies Record<string, readonly [Variant, Variant]>;

interface NxTimes {
  cold: number[];
  warm: number[];
}

interface NxRound {
  cold: number;
  warm: number;
}

interface Difference {
  /** Median of a − median of b. */
  ofMedians: number;
  /** Median of the per-round differences a − b. */
  perRoundMedian: number;
}

interface CheckoutTimes {
  /** checkoutScope: the folders the project needs. */
  sparseFolders: number[];
  /** ensureCheckout of those folders. */
  sparseCheckout: number[];
  /** Both: what a build pays. */
  sparse: number[];
  /** ensureCheckout of every file. */
  full: number[];
}

interface Summary {
  nx: Record<Variant, Record<keyof NxTimes, Stats>>;
  /** In seconds, for each of DIFFERENCES. */
  differences: Record<keyof typeof DIFFERENCES, Record<keyof NxTimes, Difference>>;
  consumersWithEdgeToShared: number;
  /** Nx's perf marks naming the plugin, in one cold and one warm run with it (not medians). */
  pluginPerfMarksMs: Record<keyof NxTimes, Record<string, number>>;
  checkout: Record<keyof CheckoutTimes, Stats>;
  /** Medians of the per-round sparse / full: with the folders' lookup, and ensureCheckout alone. */
  sparseOverFullMedian: number;
  sparseCheckoutOverFullMedian: number;
}

async function main(): Promise<void> {
  const runs = runsFromArgs();

  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  const plugin = pluginRevision();
  installTemplate();
  console.log(`Generating ${WORKSPACE}…`);
  const files = generateRepository();
  const commit = git('rev-parse', 'HEAD');
  const tracked = git('ls-files').split('\n').length;

  const env = nxEnvironment();
  const nxBin = join(WORKSPACE, 'node_modules', '.bin', 'nx');
  const nx = (label: string, ...args: string[]): Command => ({ label, file: nxBin, args, cwd: WORKSPACE, env });
  const commands = {
    reset: nx('nx reset', 'reset'),
    // Not plain `nx show projects`: read through this process's pipe, its 501 lines lost their end
    // in about one run in three (exit code 0), as nx calls process.exit right after printing.
    show: nx('nx show projects --json', 'show', 'projects', '--json'),
    graph: nx('nx graph --file=…/graph.json', 'graph', `--file=${GRAPH_FILE}`),
  };

  const nxTimes = await timeNx(runs, commands);
  const pluginPerfMarksMs = await perfMarks(commands);
  const consumersWithEdgeToShared = await edgesToShared(commands.graph);
  if (consumersWithEdgeToShared < LAYOUT.dbtProjects) {
    console.warn(
      `WARNING: nx graph has an edge to ${SHARED.name} from ${consumersWithEdgeToShared} of the ${LAYOUT.dbtProjects} dbt projects.`,
    );
  }

  const scope = await checkoutScope(WORKSPACE, commit, CHECKOUT_PROJECT);
  if (scope.folders === 'all') throw new Error(`checkoutScope wants every file: ${scope.fullBecause}`);
  const { checkoutTimes, checkedOutFiles } = await timeCheckouts(runs, commit);

  const perRound = (a: number[], b: number[], f: (x: number, y: number) => number) =>
    median(a.map((x, i) => f(x, b[i])));
  const minus = (x: number, y: number) => x - y;
  const over = (x: number, y: number) => x / y;
  const summary: Summary = {
    nx: mapValues(nxTimes, (times) => mapValues(times, stats)),
    differences: mapValues(DIFFERENCES, ([a, b]) =>
      mapValues(nxTimes[a], (times, key) => ({
        ofMedians: median(times) - median(nxTimes[b][key]),
        perRoundMedian: perRound(times, nxTimes[b][key], minus),
      })),
    ),
    consumersWithEdgeToShared,
    pluginPerfMarksMs,
    checkout: mapValues(checkoutTimes, stats),
    sparseOverFullMedian: perRound(checkoutTimes.sparse, checkoutTimes.full, over),
    sparseCheckoutOverFullMedian: perRound(checkoutTimes.sparseCheckout, checkoutTimes.full, over),
  };
  const result = {
    date: new Date().toISOString(),
    runs,
    machine: machineInfo(WORKSPACE),
    plugin,
    commit,
    repository: { ...LAYOUT, sharedPackage: SHARED.folder, otherFiles: OTHER_FILES, files, trackedFiles: tracked },
    commands: recordedCommands(commands),
    environment: { NX_DAEMON: env.NX_DAEMON, NX_NO_CLOUD: env.NX_NO_CLOUD },
    nxJson: NX_JSON,
    emptyPlugin: EMPTY_PLUGIN,
    checkout: { project: CHECKOUT_PROJECT, folders: scope.folders, files: checkedOutFiles },
    goals: GOALS,
    seconds: { nxShowProjects: nxTimes, checkout: checkoutTimes },
    summary,
  };
  writeResults('monorepo', result, report(result.date, result.machine, runs, plugin, tracked, scope.folders, summary));
}

/**
 * Writes the repository, an Nx workspace with the packaged plugin: 500 dbt projects that install
 * one shared local package, and 20,000 other files; commits it. Returns how many files of each.
 */
function generateRepository(): { dbt: number; other: number; root: number; tools: number } {
  rmSync(ROOT, { recursive: true, force: true });
  const files = new Map<string, string>([
    ['package.json', json({ name: 'bench-monorepo', private: true })],
    ['.gitignore', 'node_modules\n.nx\n'],
    ['nx.json', json(NX_JSON.with)],
    [EMPTY_PLUGIN.path, EMPTY_PLUGIN.source],
    [`${SHARED.folder}/dbt_project.yml`, `name: ${SHARED.name}\nversion: '1.0.0'\nconfig-version: 2\n`],
    [
      `${SHARED.folder}/macros/cents_to_dollars.sql`,
      '{% macro cents_to_dollars(c) %}({{ c }} / 100.0){% endmacro %}\n',
    ],
  ]);
  for (let p = 0; p < LAYOUT.dbtProjects; p++) {
    const name = `p${pad(p, 3)}`;
    const dir = `dbt/${name}`;
    files.set(`${dir}/dbt_project.yml`, `name: ${name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: ${name}\n`);
    files.set(`${dir}/packages.yml`, `packages:\n  - local: ../../${SHARED.folder}\n`);
    for (let m = 0; m < LAYOUT.modelsPerProject; m++) {
      const from = m === 0 ? '' : ` from {{ ref('m${pad(m - 1, 2)}') }}`;
      files.set(`${dir}/models/m${pad(m, 2)}.sql`, `select ${p} as project_id, ${m} as step${from}\n`);
    }
  }
  for (let s = 0; s < LAYOUT.services; s++) {
    for (let f = 0; f < LAYOUT.filesPerService / 2; f++) {
      files.set(`services/s${pad(s, 3)}/src/f${pad(f, 3)}.ts`, `export const s${s}f${f} = ${s * 1000 + f};\n`);
      files.set(`services/s${pad(s, 3)}/docs/n${pad(f, 3)}.txt`, `Service ${s}, note ${f}.\n`);
    }
  }
  for (const [path, content] of files) {
    mkdirSync(dirname(join(WORKSPACE, path)), { recursive: true });
    writeFileSync(join(WORKSPACE, path), content);
  }
  symlinkSync(join(TEMPLATE_DIR, 'node_modules'), join(WORKSPACE, 'node_modules'));
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('-c', 'commit.gpgsign=false', 'commit', '-q', '-m', '500 dbt projects and 20,000 other files');
  const count = (test: RegExp) => [...files.keys()].filter((path) => test.test(path)).length;
  return {
    dbt: count(/^(dbt|shared)\//),
    other: count(/^services\//),
    root: count(/^[^/]+$/),
    tools: count(/^tools\//),
  };
}

/** Warms up, then `runs` rounds of the variants, their order rotated by one each round. */
async function timeNx(runs: number, commands: Record<'reset' | 'show', Command>): Promise<Record<Variant, NxTimes>> {
  console.log('Warming up: one cold and one warm nx show projects of each variant…');
  for (const variant of VARIANTS) await nxRound(variant, commands);
  const times: Record<Variant, NxTimes> = {
    with: { cold: [], warm: [] },
    floor: { cold: [], warm: [] },
    without: { cold: [], warm: [] },
  };
  for (let round = 1; round <= runs; round++) {
    const first = (round - 1) % VARIANTS.length;
    for (const variant of [...VARIANTS.slice(first), ...VARIANTS.slice(0, first)]) {
      const { cold, warm } = await nxRound(variant, commands);
      times[variant].cold.push(cold);
      times[variant].warm.push(warm);
    }
    const t = (key: keyof NxTimes) => VARIANTS.map((v) => `${times[v][key][round - 1].toFixed(2)}s ${v}`).join(', ');
    console.log(`round ${round}/${runs}: nx show projects cold ${t('cold')}; warm ${t('warm')}`);
  }
  return times;
}

/** One variant's nx.json, `nx reset`, then `nx show projects` cold and warm, each checked. */
async function nxRound(variant: Variant, commands: Record<'reset' | 'show', Command>): Promise<NxRound> {
  writeFileSync(join(WORKSPACE, 'nx.json'), json(NX_JSON[variant]));
  await measure(commands.reset);
  const [cold, warm] = [await measure(commands.show), await measure(commands.show)];
  for (const { output } of [cold, warm]) {
    const line = output.split('\n').find((line) => line.startsWith('['));
    const listed = new Set((JSON.parse(line ?? '[]') as string[]).filter((name) => /^p\d{3}$/.test(name)));
    const expected = variant === 'with' ? LAYOUT.dbtProjects : 0;
    if (listed.size !== expected) {
      throw new Error(`nx show projects (${variant}) listed ${listed.size} dbt projects, not ${expected}:\n${output}`);
    }
  }
  return { cold: cold.seconds, warm: warm.seconds };
}

/**
 * With the plugin: `nx reset`, then a cold and a warm nx show projects with NX_PERF_LOGGING, for
 * Nx's timings of the plugin's worker start, loading, createNodes and createDependencies.
 */
async function perfMarks(commands: Record<'reset' | 'show', Command>): Promise<Summary['pluginPerfMarksMs']> {
  writeFileSync(join(WORKSPACE, 'nx.json'), json(NX_JSON.with));
  await measure(commands.reset);
  const logged: Command = { ...commands.show, env: { ...commands.show.env, NX_PERF_LOGGING: 'true' } };
  const marks = async () => {
    const { output } = await measure(logged);
    const found = output.matchAll(/Time taken for '([^']*nx-dbt-isolated[^']*)' ([\d.]+)ms/g);
    return Object.fromEntries([...found].map(([, name, ms]) => [name, Math.round(Number(ms))]));
  };
  return { cold: await marks(), warm: await marks() };
}

/** How many of the dbt projects `nx graph` shows depending on the shared package. */
async function edgesToShared(graph: Command): Promise<number> {
  rmSync(GRAPH_FILE, { force: true });
  await measure(graph);
  const content = JSON.parse(readFileSync(GRAPH_FILE, 'utf8')) as {
    graph: { dependencies: Record<string, { target: string }[]> };
  };
  return Object.entries(content.graph.dependencies).filter(
    ([source, edges]) => /^p\d{3}$/.test(source) && edges.some((edge) => edge.target === SHARED.name),
  ).length;
}

/** One sparse and one full checkout to warm up, then `runs` rounds of both, taking turns at going first. */
async function timeCheckouts(
  runs: number,
  commit: string,
): Promise<{ checkoutTimes: CheckoutTimes; checkedOutFiles: { sparse: number; full: number } }> {
  console.log(`Timing a sparse and a full checkout of ${CHECKOUT_PROJECT}, each round from nothing…`);
  const checkedOutFiles = { sparse: (await checkOut(commit, true)).files, full: (await checkOut(commit, false)).files };
  const times: CheckoutTimes = { sparseFolders: [], sparseCheckout: [], sparse: [], full: [] };
  for (let round = 1; round <= runs; round++) {
    for (const sparse of round % 2 ? [true, false] : [false, true]) {
      const { foldersSeconds, checkoutSeconds } = await checkOut(commit, sparse);
      if (sparse) {
        times.sparseFolders.push(foldersSeconds);
        times.sparseCheckout.push(checkoutSeconds);
        times.sparse.push(foldersSeconds + checkoutSeconds);
      } else {
        times.full.push(checkoutSeconds);
      }
    }
    const [sparse, full] = [times.sparse, times.full].map((list) => list[round - 1].toFixed(2));
    console.log(`round ${round}/${runs}: sparse checkout ${sparse}s, full ${full}s`);
  }
  rmSync(join(WORKSPACE, '.dot'), { recursive: true, force: true });
  return { checkoutTimes: times, checkedOutFiles };
}

/**
 * Removes every checkout, then checks out CHECKOUT_PROJECT at `commit` with the plugin's
 * ensureCheckout: sparse (the folders from checkoutScope, whose lookup is timed apart) or full.
 * Checks what it holds; removes it again.
 */
async function checkOut(
  commit: string,
  sparse: boolean,
): Promise<{ foldersSeconds: number; checkoutSeconds: number; files: number }> {
  rmSync(join(WORKSPACE, '.dot'), { recursive: true, force: true });
  git('worktree', 'prune');
  const started = now();
  const folders: CheckoutFolders = sparse ? (await checkoutScope(WORKSPACE, commit, CHECKOUT_PROJECT)).folders : 'all';
  const found = now();
  const checkout = await ensureCheckout(WORKSPACE, WORKSPACE, commit, { holder: 'bench', folders });
  const done = now();
  await checkout.release();
  const has = (path: string) => existsSync(join(checkout.worktree, path));
  const expected = {
    [`${CHECKOUT_PROJECT}/models/m19.sql`]: true,
    [`${SHARED.folder}/dbt_project.yml`]: true,
    'dbt/p000/dbt_project.yml': !sparse,
    'services/s000/src/f000.ts': !sparse,
  };
  const wrong = Object.entries(expected).filter(([path, present]) => has(path) !== present);
  if (checkout.state !== 'made' || wrong.length > 0) {
    throw new Error(`the ${sparse ? 'sparse' : 'full'} checkout is ${checkout.state}, wrong: ${JSON.stringify(wrong)}`);
  }
  const files = countFiles(checkout.worktree);
  await removeCheckout(WORKSPACE, WORKSPACE, checkout.worktree);
  return { foldersSeconds: found - started, checkoutSeconds: done - found, files };
}

function report(
  date: string,
  machine: Machine,
  runs: number,
  plugin: PluginRevision,
  tracked: number,
  folders: string[],
  summary: Summary,
): string {
  const s = formatSeconds;
  const row = (label: string, { min, median, max }: Stats) => `| ${label} | ${s(min)} | ${s(median)} | ${s(max)} |`;
  const difference = (label: string, { cold, warm }: Record<keyof NxTimes, Difference>) =>
    `| ${label} | ${s(cold.ofMedians)} (${s(cold.perRoundMedian)}) | ${s(warm.ofMedians)} (${s(warm.perRoundMedian)}) |`;
  const verdict = (value: number, goal: number, unit = '') =>
    `(goal ≤ ${goal}${unit}: ${value <= goal ? 'met' : 'not met'})`;
  const edges = summary.consumersWithEdgeToShared;
  return [
    '# A monorepo of 500 dbt projects: project graph and sparse checkout',
    '',
    setupLine(date, runs, plugin, machine),
    '',
    `Repository: ${LAYOUT.dbtProjects} dbt projects \`dbt/pNNN\` (${LAYOUT.modelsPerProject} models each, \`packages.yml\` with \`local: ../../${SHARED.folder}\`), the shared package, and ${LAYOUT.services * LAYOUT.filesPerService} other files (${OTHER_FILES}); ${tracked} tracked files in one commit. \`NX_DAEMON=false NX_NO_CLOUD=true\`.`,
    '',
    '| nx show projects --json | min | median | max |',
    '| --- | --- | --- | --- |',
    row('cold (after nx reset), with the plugin', summary.nx.with.cold),
    row('cold (after nx reset), floor: a do-nothing plugin', summary.nx.floor.cold),
    row('cold (after nx reset), without any plugin', summary.nx.without.cold),
    row('warm, with the plugin', summary.nx.with.warm),
    row('warm, floor: a do-nothing plugin', summary.nx.floor.warm),
    row('warm, without any plugin', summary.nx.without.warm),
    '',
    '| median − median (median of per-round differences) | cold | warm |',
    '| --- | --- | --- |',
    difference('with − without: added by the plugin', summary.differences.added),
    difference('floor − without: what any plugin costs', summary.differences.floor),
    difference('with − floor: what this plugin adds beyond that', summary.differences.beyondFloor),
    '',
    `- added cold ${verdict(summary.differences.added.cold.ofMedians, GOALS.coldAddedSeconds, ' s')}; added warm ${verdict(summary.differences.added.warm.ofMedians, GOALS.warmAddedSeconds, ' s')}`,
    `- nx show projects --json with the plugin listed all ${LAYOUT.dbtProjects} dbt projects in every run, the floor and without none; nx graph has an edge to ${SHARED.name} from ${edges} of them${edges < LAYOUT.dbtProjects ? ' (WARNING: not all)' : ''}`,
    '',
    "Nx's perf marks for the plugin (NX_PERF_LOGGING, one cold and one warm run after the rounds, not medians):",
    '',
    '| mark | cold | warm |',
    '| --- | --- | --- |',
    ...Object.keys(summary.pluginPerfMarksMs.cold).map(
      (mark) =>
        `| ${mark} | ${summary.pluginPerfMarksMs.cold[mark]} ms | ${summary.pluginPerfMarksMs.warm[mark] ?? '–'} ms |`,
    ),
    '',
    `| checkout of ${CHECKOUT_PROJECT} (ensureCheckout, from nothing) | min | median | max |`,
    '| --- | --- | --- | --- |',
    row(`sparse: checkoutScope + ensureCheckout (${folders.join(', ')})`, summary.checkout.sparse),
    row('sparse: checkoutScope alone', summary.checkout.sparseFolders),
    row('sparse: ensureCheckout alone', summary.checkout.sparseCheckout),
    row("full: ensureCheckout with 'all'", summary.checkout.full),
    '',
    `- median of per-round ratios sparse / full: **${summary.sparseOverFullMedian.toFixed(3)}** ${verdict(summary.sparseOverFullMedian, GOALS.sparseOverFull)}; ensureCheckout alone ${summary.sparseCheckoutOverFullMedian.toFixed(3)}`,
    '',
  ].join('\n');
}

function git(...args: string[]): string {
  return execFileSync('git', args, {
    cwd: WORKSPACE,
    encoding: 'utf8',
    env: { ...process.env, ...BENCH_GIT_ENV },
  }).trim();
}

function countFiles(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce(
    (n, entry) => n + (entry.isDirectory() ? countFiles(join(dir, entry.name)) : entry.name === '.git' ? 0 : 1),
    0,
  );
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

run('bench', main);
