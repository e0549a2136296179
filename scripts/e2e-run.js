// npm test's end-to-end phase (ADR 28): every e2e file on the repository's own Nx, the files of
// e2e/nx-versions.json on each other version, spread over two runs that go side by side, each a
// jest --runInBand per Nx version it holds. Each test's start and end show live, prefixed by its
// run; jest's own output goes to test-results/<run>.log, shown once every run has ended. The
// results land in test-results/e2e.json (own Nx) and test-results/e2e-nx<major>.json.
const { spawn } = require('node:child_process');
const { existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const RESULTS = join(ROOT, 'test-results');
const RUNS = ['a', 'b'];
const DEFAULT_SECONDS = 60;

const readJson = (path) => JSON.parse(readFileSync(join(ROOT, path), 'utf8'));
const major = (version) => version.split('.')[0];

/** Each Nx version with its template folder, the files it runs and the file its results go to. */
function versions() {
  const own = readJson('package.json').devDependencies.nx;
  const matrix = readJson('e2e/nx-versions.json');
  const every = readdirSync(join(ROOT, 'e2e', 'tests')).filter((file) => file.endsWith('.e2e.ts'));
  const listed = Object.keys(matrix.everyVersion);
  const unknown = listed.filter((file) => !every.includes(file));
  if (unknown.length > 0) throw new Error(`e2e/nx-versions.json names files that do not exist: ${unknown.join(', ')}`);
  return [
    { version: own, templateDir: join(ROOT, 'tmp', 'e2e-template'), files: every, output: 'e2e.json' },
    ...matrix.otherVersions.map((version) => ({
      version,
      templateDir: join(ROOT, 'tmp', `e2e-template-nx${major(version)}`),
      files: listed,
      output: `e2e-nx${major(version)}.json`,
    })),
  ];
}

/** Longest file first to the run with the least work so far: the runs end close together. */
function balance(all) {
  const durations = readJson('e2e/durations.json');
  const seconds = (file) => durations[file] ?? DEFAULT_SECONDS;
  const jobs = all.flatMap((entry) => entry.files.map((file) => ({ entry, file })));
  jobs.sort((a, b) => seconds(b.file) - seconds(a.file));
  const runs = RUNS.map((name) => ({ name, seconds: 0, jobs: [] }));
  for (const job of jobs) {
    const run = runs.reduce((least, candidate) => (candidate.seconds < least.seconds ? candidate : least));
    run.jobs.push(job);
    run.seconds += seconds(job.file);
  }
  return runs;
}

/** The jest invocations of one run: one per Nx version it holds jobs of. */
function invocationsOf(run, all) {
  return all
    .map((entry) => ({ entry, files: run.jobs.filter((job) => job.entry === entry).map((job) => job.file) }))
    .filter((invocation) => invocation.files.length > 0)
    .map(({ entry, files }) => ({ entry, files, label: `nx${major(entry.version)}-${run.name}` }));
}

function versionEnv(entry) {
  return { ...process.env, E2E_NX_VERSION: entry.version, E2E_TEMPLATE_DIR: entry.templateDir };
}

function exitOf(child) {
  return new Promise((resolve) => child.on('close', (code, signal) => resolve(signal ? 1 : code)));
}

/** Installs each version's template before the runs start, so two runs never install one at once. */
async function installTemplates(all) {
  const install =
    "require('ts-node').register({ transpileOnly: true, project: 'e2e/tsconfig.json' });" +
    "require('./fixture-workspace/template').default();";
  const codes = await Promise.all(
    all.map((entry) =>
      exitOf(spawn(process.execPath, ['-e', install], { cwd: ROOT, env: versionEnv(entry), stdio: 'inherit' })),
    ),
  );
  return codes.every((code) => code === 0);
}

function runJest(invocation) {
  // A result file an earlier run left would be merged as this run's if jest wrote none.
  rmSync(join(RESULTS, `${invocation.label}.json`), { force: true });
  const log = openSync(join(RESULTS, `${invocation.label}.log`), 'w');
  const args = [
    join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'),
    '--config=e2e/jest.config.ts',
    '--runInBand',
    '--reporters=default',
    '--reporters=<rootDir>/support/progress-reporter.js',
    '--json',
    `--outputFile=${join(RESULTS, `${invocation.label}.json`)}`,
    '--runTestsByPath',
    ...invocation.files.map((file) => join('e2e', 'tests', file)),
  ];
  const env = { ...versionEnv(invocation.entry), E2E_RUN: invocation.label };
  return exitOf(spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', log] }));
}

async function runInTurn(invocations) {
  let ok = true;
  for (const invocation of invocations) ok = (await runJest(invocation)) === 0 && ok;
  return ok;
}

/** One jest result file per version, from its invocations'; one that wrote none is a suite that could not run. */
function mergeResults(entry, invocations) {
  const merged = {
    numPassedTests: 0,
    numFailedTests: 0,
    numPendingTests: 0,
    numRuntimeErrorTestSuites: 0,
    testResults: [],
  };
  for (const invocation of invocations.filter((candidate) => candidate.entry === entry)) {
    const file = join(RESULTS, `${invocation.label}.json`);
    if (!existsSync(file)) {
      merged.numRuntimeErrorTestSuites += 1;
      merged.testResults.push({
        name: `${invocation.label}.json`,
        status: 'failed',
        testExecError: { message: 'jest wrote no results' },
        assertionResults: [],
      });
      continue;
    }
    const results = JSON.parse(readFileSync(file, 'utf8'));
    merged.numPassedTests += results.numPassedTests;
    merged.numFailedTests += results.numFailedTests;
    merged.numPendingTests += results.numPendingTests;
    merged.numRuntimeErrorTestSuites += results.numRuntimeErrorTestSuites;
    merged.testResults.push(...results.testResults);
  }
  writeFileSync(join(RESULTS, entry.output), JSON.stringify(merged));
}

async function main() {
  if (!process.env.E2E_TARBALL)
    throw new Error('E2E_TARBALL: give the packaged plugin (scripts/test.sh packages it once)');
  const all = versions();
  const runs = balance(all).map((run) => ({ ...run, invocations: invocationsOf(run, all) }));
  for (const run of runs) {
    const files = run.invocations.map((invocation) => `${invocation.label}: ${invocation.files.length} files`);
    console.log(`run ${run.name}, about ${run.seconds} s: ${files.join(', ')}`);
  }
  if (!(await installTemplates(all))) return 1;
  const ok = await Promise.all(runs.map((run) => runInTurn(run.invocations)));
  const invocations = runs.flatMap((run) => run.invocations);
  for (const entry of all) mergeResults(entry, invocations);
  for (const invocation of invocations) {
    console.log(`== end-to-end tests (${invocation.label}, Nx ${invocation.entry.version})`);
    process.stdout.write(readFileSync(join(RESULTS, `${invocation.label}.log`), 'utf8'));
  }
  return ok.every(Boolean) ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
