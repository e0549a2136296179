import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, type } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, VENV_BIN } from '../fixture-workspace/paths';

/** What the benchmarks share: running and timing a process, statistics, the machine, the results. */

export const RESULTS = join(REPO_ROOT, 'bench', 'results');
/** Fixed author and dates for the commits benchmarks make: the same files make the same commit on every run. */
export const BENCH_GIT_ENV = {
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
  GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
};
export const TIME = '/usr/bin/time';
export const DBT = join(VENV_BIN, 'dbt');

export interface Command {
  label: string;
  file: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface Run {
  seconds: number;
  /** Peak RSS of the largest single process of the tree (GNU time's %M), in KiB. */
  rssKb?: number;
  output: string;
}

export interface MeasureOptions {
  /** Run the command under GNU time to note its peak RSS. */
  memory?: boolean;
  /** Called with each line of output (stdout and stderr) as it arrives, and the seconds since the start. */
  onLine?: (line: string, at: number) => void;
}

export interface Stats {
  min: number;
  median: number;
  max: number;
}

export interface Machine {
  os: string;
  cpu: string;
  cpus: number;
  node: string;
  dbt: string;
  nx: string;
}

export interface PluginRevision {
  commit: string;
  modified: boolean;
}

/** `--runs N` of the command line (default 7): the number of alternating rounds. */
export function runsFromArgs(): number {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a positive whole number, not ${values.runs}`);
  return runs;
}

/** Runs one command to its end, timing the whole process; any exit but 0 fails the benchmark. */
export function measure(command: Command, { memory = false, onLine }: MeasureOptions = {}): Promise<Run> {
  const rssFile = join(REPO_ROOT, 'tmp', 'bench-rss.txt');
  const [file, args] = memory
    ? [TIME, ['-f', '%M', '-o', rssFile, command.file, ...command.args]]
    : [command.file, command.args];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    const child = spawn(file, args, { cwd: command.cwd, env: command.env });
    let output = '';
    const reader = () => {
      let pending = '';
      return (chunk: Buffer) => {
        output += chunk;
        if (!onLine) return;
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) onLine(line, elapsed());
      };
    };
    child.stdout.on('data', reader());
    child.stderr.on('data', reader());
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = elapsed();
      if (code !== 0) return reject(new Error(`${command.label} exited with ${code}:\n${output}`));
      const rssKb = memory ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) : undefined;
      resolve({ seconds, rssKb, output });
    });
  });
}

/** The machine and the versions of node, dbt and the Nx installed in `workspace`. */
export function machine(workspace: string): Machine {
  return {
    os: `${type()} ${release()}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    node: process.version,
    dbt: dbtVersion(),
    nx: JSON.parse(readFileSync(join(workspace, 'node_modules', 'nx', 'package.json'), 'utf8')).version as string,
  };
}

/** The repository's commit the plugin was packed from, and whether packages/ had changes on top. */
export function pluginRevision(): PluginRevision {
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

/** The first line of a report under its title: when, how many rounds, which plugin, on what. */
export function setupLine(date: string, runs: number, plugin: PluginRevision, machine: Machine): string {
  return `${date}, ${runs} alternating rounds, plugin at ${plugin.commit.slice(0, 7)}${plugin.modified ? ' with changes' : ''}; ${machine.cpu} (${machine.cpus} CPUs), ${machine.os}, node ${machine.node}, dbt ${machine.dbt}, nx ${machine.nx}.`;
}

/** The commands as the results record them: folder relative to the repository, full argv. */
export function recordedCommands<K extends string>(
  commands: Record<K, Command>,
): Record<K, { cwd: string; argv: string[] }> {
  return mapValues(commands, (c) => ({ cwd: relative(REPO_ROOT, c.cwd), argv: [c.file, ...c.args] }));
}

/** Writes bench/results/<name>.json and .md and prints the report. */
export function writeResults(name: string, result: unknown, markdown: string): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(RESULTS, `${name}.md`), markdown);
  console.log(`\n${markdown}`);
  console.log(`Written: bench/results/${name}.json and .md`);
}

/** Seconds as the reports print them, two decimals, without a minus sign on zero. */
export function formatSeconds(n: number): string {
  return `${n.toFixed(2).replace(/^-(0\.00)$/, '$1')} s`;
}

export function sum(list: number[]): number {
  return list.reduce((total, n) => total + n, 0);
}

export function stats(list: number[]): Stats {
  return { min: Math.min(...list), median: median(list), max: Math.max(...list) };
}

export function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function mapValues<K extends string, V, W>(record: Record<K, V>, f: (value: V, key: K) => W): Record<K, W> {
  const entries = Object.entries(record) as [K, V][];
  return Object.fromEntries(entries.map(([key, value]) => [key, f(value, key)])) as Record<K, W>;
}

/** Runs a benchmark's main, and on failure prints why and exits 1. */
export function run(name: string, main: () => Promise<void>): void {
  main().catch((error: Error) => {
    console.error(`${name} failed: ${error.message}`);
    process.exit(1);
  });
}
