import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import installTemplate from '../fixture-workspace/template';
import { REPO_ROOT } from '../fixture-workspace/paths';
import { withDescendants } from '../fixture-workspace/manifest';
import { installedWorkspace, nxEnvironment } from '../fixture-workspace/workspace';
import {
  DBT,
  formatSeconds,
  machine as machineInfo,
  mapValues,
  measure,
  median,
  pluginRevision,
  recordedCommands,
  run,
  setupLine,
  stats,
  writeResults,
  type Command,
  type Machine,
  type PluginRevision,
  type Stats,
  BENCH_GIT_ENV,
} from './support';

/**
 * A slim build (`--deferTo=<base>`: dbt's `state:modified+` against the base's isolated build)
 * of a commit that changes one model, against a full isolated build of the same commit, in a
 * generated dbt project of 85 models in five layers on DuckDB.
 */

const ROOT = join(REPO_ROOT, 'tmp', 'bench-slim');
/** Where the base is built and the slim builds run. */
const WORKSPACE = join(ROOT, 'workspace');
/**
 * A clone of it (same commits, so the same schema names) where the full builds run: in one
 * workspace, a full and a slim build of the head would share its target folder and schemas.
 */
const CLONE = join(ROOT, 'full');
const PROJECT = 'analytics';
const GOAL = 0.3;

/** The layers of the generated project: how many models each, and what each model reads. */
const DEFAULT_RAW_ROWS = 40000;
const { runs: RUNS, rows: RAW_ROWS } = benchArgs();
const LAYOUT = { raw: 10, staging: 20, intermediate: 30, marts: 20, reports: 5, rawRows: RAW_ROWS };
/** Results of the default project are `slim-build.*`; a project with other data sizes gets its own files. */
const RESULTS_NAME = RAW_ROWS === DEFAULT_RAW_ROWS ? 'slim-build' : `slim-build-${RAW_ROWS}-rows`;

/** `--runs N` (default 5) and `--rows N`, the generated rows of each raw table (default 40000). */
function benchArgs(): { runs: number; rows: number } {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '5' }, rows: { type: 'string', default: String(DEFAULT_RAW_ROWS) } },
  });
  const [runs, rows] = [Number(values.runs), Number(values.rows)];
  if (![runs, rows].every((value) => Number.isInteger(value) && value >= 1)) {
    throw new Error(`--runs and --rows take positive whole numbers, not ${values.runs} and ${values.rows}`);
  }
  return { runs, rows };
}
/** The one model the head commit changes, and what dbt must then build: it and its descendants. */
const CHANGED = 'int_03';
const EXPECTED_MODELS = ['int_03', 'mart_03', 'report_00'];

type Key = 'full' | 'slim' | 'dbt' | 'dbtSlim';
const ORDER: Key[] = ['full', 'slim', 'dbt', 'dbtSlim'];

interface RunResults {
  results: { unique_id: string; status: string }[];
}

interface Manifest {
  nodes: Record<string, unknown>;
  child_map: Record<string, string[]>;
}

interface Summary {
  seconds: Record<Key, Stats>;
  /** Median of the per-round slim / full, and the range of those ratios. */
  slimOverFullMedian: number;
  slimOverFullRange: [number, number];
  slimOverDbtMedian: number;
  /** Medians of the per-round differences nx − bare dbt, full and slim: what Nx and the plugin add. */
  fullMinusDbtMedianSeconds: number;
  slimMinusDbtSlimMedianSeconds: number;
  /** Median of the per-round bare dbt slim / bare dbt full: the ratio dbt alone would reach. */
  dbtSlimOverDbtMedian: number;
  /** Nodes each full build ran, and the nodes each slim build ran (the same in every run). */
  fullNodes: number;
  slimNodes: string[];
}

async function main(): Promise<void> {
  const runs = RUNS;
  const loadAtStart = loadavg();

  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  const plugin = pluginRevision();
  installTemplate();
  console.log(`Generating ${WORKSPACE} and its clone ${CLONE}…`);
  const { base, head, models, tests } = generateRepository();
  const short = (sha: string) => sha.slice(0, 8);

  const env = nxEnvironment();
  const nx = (label: string, cwd: string, ...args: string[]): Command => ({
    label,
    file: join(cwd, 'node_modules', '.bin', 'nx'),
    args,
    cwd,
    env,
  });
  const build = `${PROJECT}:isolated-build`;
  const baseBuild = nx(`nx run ${build} --ref=<base>`, WORKSPACE, 'run', build, `--ref=${base}`);
  console.log(`Building the base ${short(base)} once…`);
  await measure(baseBuild);

  const dbtEnv: NodeJS.ProcessEnv = { ...env, DBT_SEND_ANONYMOUS_USAGE_STATS: 'false' };
  delete dbtEnv.DBT_TARGET;
  const cloneBuild = join(CLONE, '.dot', short(head), PROJECT, 'dev');
  const slimBuild = join(WORKSPACE, '.dot', short(head), PROJECT, 'dev');
  const dbtSlimTarget = join(WORKSPACE, '.dot', 'bench-dbt-slim', 'target');
  const commands: Record<Key, Command> = {
    full: nx(
      `(a) full: nx run ${build} --ref=<head> --skip-nx-cache (in a clone)`,
      CLONE,
      'run',
      build,
      `--ref=${head}`,
      '--skip-nx-cache',
    ),
    slim: nx(
      `(b) slim: nx run ${build} --ref=<head> --deferTo=<base> --skip-nx-cache`,
      WORKSPACE,
      'run',
      build,
      `--ref=${head}`,
      `--deferTo=${base}`,
      '--skip-nx-cache',
    ),
    dbt: {
      label: '(c) bare dbt build of the head (the clone’s checkout, profile and warehouse)',
      file: DBT,
      args: [
        'build',
        ...['--project-dir', join(CLONE, '.dot', short(head), 'worktree', PROJECT)],
        ...['--profiles-dir', join(cloneBuild, 'profiles')],
        ...['--target', 'dev'],
        ...['--target-path', join(CLONE, '.dot', 'bench-dbt', 'target')],
        ...['--log-path', join(CLONE, '.dot', 'bench-dbt', 'logs')],
      ],
      cwd: join(CLONE, PROJECT),
      env: dbtEnv,
    },
    dbtSlim: {
      label:
        '(d) bare dbt build --select state:modified+ --defer --state <base target> --favor-state (the slim build’s checkout and profile)',
      file: DBT,
      args: [
        'build',
        ...['--project-dir', join(WORKSPACE, '.dot', short(head), 'worktree', PROJECT)],
        ...['--profiles-dir', join(slimBuild, 'profiles')],
        ...['--target', 'dev'],
        ...['--target-path', dbtSlimTarget],
        ...['--log-path', join(WORKSPACE, '.dot', 'bench-dbt-slim', 'logs')],
        ...['--select', 'state:modified+'],
        ...['--defer', '--state', join(WORKSPACE, '.dot', short(base), PROJECT, 'dev', 'target'), '--favor-state'],
      ],
      cwd: join(WORKSPACE, PROJECT),
      env: dbtEnv,
    },
  };

  // Warm-up: the checkouts, profiles and dbt's partial parse exist for every later run.
  console.log('Warming up: one run of each…');
  const fullWarmup = await measure(commands.full);
  const manifest = readJson<Manifest>(join(cloneBuild, 'target', 'manifest.json'));
  const expected = withDescendants(manifest, `model.${PROJECT}.${CHANGED}`);
  const expectedModels = expected.filter((id) => id.startsWith('model.')).map((id) => id.split('.')[2]);
  if (JSON.stringify(expectedModels) !== JSON.stringify(EXPECTED_MODELS)) {
    throw new Error(`the manifest puts ${expectedModels.join(', ')} downstream of ${CHANGED}, not ${EXPECTED_MODELS}`);
  }
  const fullNodes = checkFullBuild(cloneBuild, models + tests, fullWarmup.output);
  checkSlimBuild((await measure(commands.slim)).output, base, head, expected);
  await measure(commands.dbt);
  await measure(commands.dbtSlim);
  checkRan(join(dbtSlimTarget, 'run_results.json'), expected, 'the bare dbt slim build');

  const loadAtRounds = loadavg();
  console.log(`1-minute load average before the rounds: ${loadAtRounds[0].toFixed(2)}`);
  const seconds: Record<Key, number[]> = { full: [], slim: [], dbt: [], dbtSlim: [] };
  for (let round = 1; round <= runs; round++) {
    const first = (round - 1) % ORDER.length;
    for (const key of [...ORDER.slice(first), ...ORDER.slice(0, first)]) {
      // dbt writes run_results.json anew; one left from an earlier run must not pass the check.
      if (key === 'dbtSlim') rmSync(join(dbtSlimTarget, 'run_results.json'), { force: true });
      const sample = await measure(commands[key]);
      if (key === 'full') checkFullBuild(cloneBuild, models + tests, sample.output);
      if (key === 'slim') checkSlimBuild(sample.output, base, head, expected);
      if (key === 'dbtSlim') checkRan(join(dbtSlimTarget, 'run_results.json'), expected, 'the bare dbt slim build');
      seconds[key].push(sample.seconds);
    }
    const t = (key: Key) => `${key} ${seconds[key][round - 1].toFixed(2)}s`;
    const ratio = seconds.slim[round - 1] / seconds.full[round - 1];
    console.log(`round ${round}/${runs}: ${ORDER.map(t).join('  ')}  slim/full ${ratio.toFixed(3)}`);
  }
  const loadAtEnd = loadavg();

  const ratios = seconds.slim.map((slim, i) => slim / seconds.full[i]);
  const summary: Summary = {
    seconds: mapValues(seconds, stats),
    slimOverFullMedian: median(ratios),
    slimOverFullRange: [Math.min(...ratios), Math.max(...ratios)],
    slimOverDbtMedian: median(seconds.slim.map((slim, i) => slim / seconds.dbt[i])),
    fullMinusDbtMedianSeconds: median(seconds.full.map((full, i) => full - seconds.dbt[i])),
    slimMinusDbtSlimMedianSeconds: median(seconds.slim.map((slim, i) => slim - seconds.dbtSlim[i])),
    dbtSlimOverDbtMedian: median(seconds.dbtSlim.map((dbtSlim, i) => dbtSlim / seconds.dbt[i])),
    fullNodes,
    slimNodes: expected,
  };
  const load = {
    atStart: loadAtStart.map(round2),
    beforeRounds: loadAtRounds.map(round2),
    atEnd: loadAtEnd.map(round2),
  };
  const result = {
    date: new Date().toISOString(),
    runs,
    machine: machineInfo(WORKSPACE),
    plugin,
    loadAverage: load,
    commits: { base, head },
    project: { ...LAYOUT, models, tests, changed: CHANGED, expectedModels: EXPECTED_MODELS },
    commands: { base: recordedCommands({ baseBuild }).baseBuild, ...recordedCommands(commands) },
    environment: { NX_DAEMON: env.NX_DAEMON, NX_NO_CLOUD: env.NX_NO_CLOUD },
    goal: { slimOverFull: GOAL },
    seconds,
    summary,
  };
  writeResults(
    RESULTS_NAME,
    result,
    report(result.date, result.machine, runs, plugin, { base, head, models, tests }, load, commands, summary),
  );
}

/**
 * Writes an Nx workspace with the packaged plugin and one dbt project of five layers on DuckDB,
 * commits it as the base, changes one intermediate model and commits that as the head; clones it.
 */
function generateRepository(): { base: string; head: string; models: number; tests: number } {
  rmSync(ROOT, { recursive: true, force: true });
  const { files, models, tests } = dbtProject();
  files.set('package.json', json({ name: 'bench-slim', private: true }));
  files.set('nx.json', json({ plugins: ['nx-dbt-isolated'] }));
  files.set('.gitignore', 'node_modules\n.nx\n');
  for (const [path, content] of files) write(join(WORKSPACE, path), content);
  git(WORKSPACE, 'init', '-q', '-b', 'main');
  git(WORKSPACE, 'add', '-A');
  git(WORKSPACE, '-c', 'commit.gpgsign=false', 'commit', '-q', '-m', `dbt project: ${models} models in five layers`);
  const base = git(WORKSPACE, 'rev-parse', 'HEAD');

  const changed = join(WORKSPACE, PROJECT, 'models', 'intermediate', `${CHANGED}.sql`);
  const before = readFileSync(changed, 'utf8');
  const after = before.replace(/\n$/, '\nwhere coalesce(a.customer_id, b.customer_id) <> 13\n');
  if (after === before) throw new Error(`could not change ${CHANGED}`);
  writeFileSync(changed, after);
  git(WORKSPACE, 'add', '-A');
  git(WORKSPACE, '-c', 'commit.gpgsign=false', 'commit', '-q', '-m', `${CHANGED}: leave customer 13 out`);
  const head = git(WORKSPACE, 'rev-parse', 'HEAD');
  installedWorkspace(WORKSPACE);

  git(ROOT, 'clone', '-q', WORKSPACE, CLONE);
  installedWorkspace(CLONE);
  return { base, head, models, tests };
}

/**
 * The dbt project: raw tables generated with DuckDB's range(), staging views, intermediate
 * tables joining two staging models, marts unioning two intermediates, reports over four marts;
 * not_null tests on staging, marts and reports, unique on the reports' month. Each intermediate
 * model feeds one or two marts, each mart one report.
 */
function dbtProject(): { files: Map<string, string>; models: number; tests: number } {
  const dir = PROJECT;
  const files = new Map<string, string>([
    [
      `${dir}/dbt_project.yml`,
      [
        `name: ${PROJECT}`,
        "version: '1.0.0'",
        'config-version: 2',
        `profile: ${PROJECT}`,
        "model-paths: ['models']",
        'models:',
        `  ${PROJECT}:`,
        '    +materialized: table',
        '    staging:',
        '      +materialized: view',
        '',
      ].join('\n'),
    ],
    [
      `${dir}/profiles.yml`,
      [
        `${PROJECT}:`,
        '  target: dev',
        '  outputs:',
        '    dev:',
        '      type: duckdb',
        '      path: warehouse.duckdb',
        `      schema: ${PROJECT}`,
        '      threads: 4',
        '',
      ].join('\n'),
    ],
    [`${dir}/.gitignore`, 'target/\nlogs/\n*.duckdb\n*.duckdb.wal\n'],
  ]);
  const model = (layer: string, name: string, sql: string) => files.set(`${dir}/models/${layer}/${name}.sql`, sql);
  const ref = (name: string) => `{{ ref('${name}') }}`;
  const name = (prefix: string, n: number) => `${prefix}_${String(n).padStart(2, '0')}`;
  const tests: string[] = [];
  const notNull = (model: string, column: string, unique = false) => {
    tests.push(
      `  - name: ${model}\n    columns:\n      - name: ${column}\n        data_tests: [${unique ? 'unique, ' : ''}not_null]`,
    );
  };

  for (let i = 0; i < LAYOUT.raw; i++) {
    model(
      'raw',
      name('raw', i),
      [
        'select',
        '  i as id,',
        `  (i * ${7 + i}) % 500 as customer_id,`,
        `  ((i * 7919 + ${i * 31}) % 10000) / 100.0 as amount,`,
        "  date '2025-01-01' + cast(i % 365 as integer) as day",
        `from range(${LAYOUT.rawRows}) as t(i)`,
        '',
      ].join('\n'),
    );
  }
  for (let s = 0; s < LAYOUT.staging; s++) {
    model(
      'staging',
      name('stg', s),
      `select id, customer_id, amount * ${1 + s / 10} as amount, day\nfrom ${ref(name('raw', s % LAYOUT.raw))}\nwhere id % ${s + 2} <> 0\n`,
    );
    notNull(name('stg', s), 'id');
  }
  for (let k = 0; k < LAYOUT.intermediate; k++) {
    const [x, y] = [name('stg', k % LAYOUT.staging), name('stg', (k + 7) % LAYOUT.staging)];
    model(
      'intermediate',
      name('int', k),
      [
        `with a as (select customer_id, day, sum(amount) as amount, count(*) as n from ${ref(x)} group by 1, 2),`,
        `b as (select customer_id, day, sum(amount) as amount, count(*) as n from ${ref(y)} group by 1, 2)`,
        'select',
        '  coalesce(a.customer_id, b.customer_id) as customer_id,',
        '  coalesce(a.day, b.day) as day,',
        '  coalesce(a.amount, 0) as amount_a,',
        '  coalesce(b.amount, 0) as amount_b,',
        '  coalesce(a.n, 0) + coalesce(b.n, 0) as n',
        'from a full outer join b on a.customer_id = b.customer_id and a.day = b.day',
        '',
      ].join('\n'),
    );
  }
  for (let j = 0; j < LAYOUT.marts; j++) {
    const [x, y] = [name('int', j), name('int', (j + 10) % LAYOUT.intermediate)];
    model(
      'marts',
      name('mart', j),
      [
        "select customer_id, date_trunc('month', day) as month,",
        '  sum(amount_a) as amount_a, sum(amount_b) as amount_b, sum(n) as n',
        `from (select * from ${ref(x)} union all select * from ${ref(y)})`,
        'group by 1, 2',
        '',
      ].join('\n'),
    );
    notNull(name('mart', j), 'customer_id');
  }
  const martsPerReport = LAYOUT.marts / LAYOUT.reports;
  for (let r = 0; r < LAYOUT.reports; r++) {
    const marts = Array.from({ length: martsPerReport }, (_, m) => name('mart', r * martsPerReport + m));
    model(
      'reports',
      name('report', r),
      [
        'select month, count(distinct customer_id) as customers, sum(amount_a + amount_b) as amount, sum(n) as n',
        `from (${marts.map((m) => `select * from ${ref(m)}`).join(' union all ')})`,
        'group by 1',
        '',
      ].join('\n'),
    );
    notNull(name('report', r), 'month', true);
  }
  files.set(`${dir}/models/_tests.yml`, `version: 2\n\nmodels:\n${tests.join('\n')}\n`);
  const models = LAYOUT.raw + LAYOUT.staging + LAYOUT.intermediate + LAYOUT.marts + LAYOUT.reports;
  const testCount = LAYOUT.staging + LAYOUT.marts + 2 * LAYOUT.reports;
  return { files, models, tests: testCount };
}

/** A full build ran every model and test, all of them successfully; returns how many nodes. */
function checkFullBuild(buildDir: string, nodes: number, output: string): number {
  if (/deferring to schema/.test(output)) throw new Error(`the full build was a slim one:\n${output}`);
  const results = readJson<RunResults>(join(buildDir, 'target', 'run_results.json')).results;
  const failed = results.filter((result) => !['success', 'pass'].includes(result.status));
  if (results.length !== nodes || failed.length > 0) {
    throw new Error(`a full build ran ${results.length} nodes, not ${nodes}; not successful: ${json(failed)}`);
  }
  return results.length;
}

/**
 * A slim build said it deferred to the base and ran exactly the changed model and its
 * descendants (tests included), all successfully: else it measured something else.
 */
function checkSlimBuild(output: string, base: string, head: string, expected: string[]): void {
  const announced = `slim build: state:modified+ against ${base.slice(0, 12)}`;
  if (!output.includes(announced)) throw new Error(`the slim build did not print '${announced}':\n${output}`);
  const file = join(WORKSPACE, '.dot', head.slice(0, 8), PROJECT, 'dev', 'target', 'run_results.json');
  checkRan(file, expected, 'the slim build', output);
}

/** The run_results.json in `file` holds exactly the `expected` nodes, all successful. */
function checkRan(file: string, expected: string[], what: string, output = ''): void {
  const results = readJson<RunResults>(file).results;
  const ran = results.map((result) => result.unique_id).sort();
  const failed = results.filter((result) => !['success', 'pass'].includes(result.status));
  if (JSON.stringify(ran) !== JSON.stringify(expected) || failed.length > 0) {
    throw new Error(`${what} ran ${json(ran)}, expected ${json(expected)}; not successful: ${json(failed)}${output}`);
  }
}

function report(
  date: string,
  machine: Machine,
  runs: number,
  plugin: PluginRevision,
  project: { base: string; head: string; models: number; tests: number },
  load: Record<'atStart' | 'beforeRounds' | 'atEnd', number[]>,
  commands: Record<Key, Command>,
  summary: Summary,
): string {
  const s = formatSeconds;
  const rows = ORDER.map((key) => {
    const { min, median, max } = summary.seconds[key];
    return `| ${commands[key].label} | ${s(min)} | ${s(median)} | ${s(max)} |`;
  });
  const met = summary.slimOverFullMedian <= GOAL ? 'met' : 'not met';
  const [low, high] = summary.slimOverFullRange.map((r) => r.toFixed(3));
  const models = EXPECTED_MODELS.join(', ');
  return [
    '# Slim build of a one-model change vs a full isolated build',
    '',
    setupLine(date, runs, plugin, machine),
    '',
    `1-minute load average: ${load.atStart[0]} at the start, ${load.beforeRounds[0]} before the rounds, ${load.atEnd[0]} at the end.`,
    '',
    `Project: ${project.models} models in five layers (${LAYOUT.raw} raw tables of ${LAYOUT.rawRows} generated rows, ${LAYOUT.staging} staging views, ${LAYOUT.intermediate} intermediate, ${LAYOUT.marts} mart and ${LAYOUT.reports} report tables) and ${project.tests} tests on DuckDB, threads 4. Base ${project.base.slice(0, 8)}; head ${project.head.slice(0, 8)} changes ${CHANGED} only. Every slim run, nx and bare, built exactly ${models} and their ${summary.slimNodes.length - EXPECTED_MODELS.length} tests (${summary.slimNodes.length} of ${summary.fullNodes} nodes, per run_results.json), every full nx run all ${summary.fullNodes}. \`NX_DAEMON=false NX_NO_CLOUD=true\`.`,
    '',
    '| command | min | median | max |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    `- median of per-round ratios slim / full: **${summary.slimOverFullMedian.toFixed(3)}** (per round ${low} to ${high}; goal ≤ ${GOAL}: ${met})`,
    `- median of per-round ratios bare dbt: slim / full (d / c): ${summary.dbtSlimOverDbtMedian.toFixed(3)}; slim nx / full bare dbt (b / c): ${summary.slimOverDbtMedian.toFixed(3)}`,
    `- median of per-round differences nx − bare dbt: full (a − c) ${s(summary.fullMinusDbtMedianSeconds)}, slim (b − d) ${s(summary.slimMinusDbtSlimMedianSeconds)}`,
    '',
  ].join('\n');
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...BENCH_GIT_ENV } }).trim();
}

function write(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

function readJson<T>(path: string): T {
  if (!existsSync(path)) throw new Error(`${path} does not exist`);
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

run('bench:slim', main);
