import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import installTemplate from '../fixture-workspace/template';
import { commitBeside } from '../fixture-workspace/repo';
import { REPO_ROOT } from '../fixture-workspace/paths';
import { createTestWorkspace, nxEnvironment } from '../fixture-workspace/workspace';
import {
  machine as machineInfo,
  measure,
  pluginRevision,
  run,
  writeResults,
  type Machine,
  type PluginRevision,
} from './support';

const WORKSPACE = join(REPO_ROOT, 'tmp', 'bench-cache-size-workspace');
const BUILDS = 10;
const MB = 1024 * 1024;

/** Bytes under `path`, as `du --bytes` counts them (apparent sizes). */
function bytesUnder(path: string): number {
  return Number(execFileSync('du', ['--summarize', '--bytes', path], { encoding: 'utf8' }).split('\t')[0]);
}

interface Entry {
  hash: string;
  bytes: number;
  /** Builds staged in the entry: folders under .dot/cache/analytics. */
  builds: number;
}

async function main(): Promise<void> {
  const plugin = pluginRevision();
  const tarball = process.env.E2E_TARBALL;
  console.log('Packing the plugin and installing it into tmp/e2e-template…');
  installTemplate();
  rmSync(WORKSPACE, { recursive: true, force: true });
  mkdirSync(WORKSPACE, { recursive: true });
  const ws = createTestWorkspace(undefined, WORKSPACE);
  const cacheDir = join(WORKSPACE, '.nx', 'cache');
  const env = nxEnvironment({ NX_CACHE_DIRECTORY: cacheDir });
  const nx = join(WORKSPACE, 'node_modules', '.bin', 'nx');

  const commits = Array.from({ length: BUILDS }, (_, i) =>
    commitBeside(WORKSPACE, ws.main, `bench/size-${i + 1}`, `Bench commit ${i + 1}`, {
      'analytics/models/marts/bench_note.sql': `select ${i + 1} as note\n`,
    }),
  );
  for (const [i, commit] of commits.entries()) {
    const args = ['run', 'analytics:isolated-build', `--ref=${commit}`];
    const build = await measure({ label: `build ${i + 1}`, file: nx, args, cwd: WORKSPACE, env });
    console.log(`build ${i + 1}/${BUILDS} of ${commit.slice(0, 8)}: ${build.seconds.toFixed(1)} s`);
  }

  const entries: Entry[] = readdirSync(cacheDir)
    .filter((name) => existsSync(join(cacheDir, name, '.dot', 'cache')))
    .map((hash) => ({
      hash,
      bytes: bytesUnder(join(cacheDir, hash)),
      builds: readdirSync(join(cacheDir, hash, '.dot', 'cache', 'analytics')).length,
    }));
  const artifactBytes = commits
    .map((commit) => join(WORKSPACE, '.dot', commit.slice(0, 8), 'analytics', 'dev'))
    .map((dir) =>
      ['target/manifest.json', 'target/run_results.json', 'target/semantic_manifest.json', 'build.json']
        .map((file) => join(dir, file))
        .filter(existsSync)
        .reduce((total, file) => total + bytesUnder(file), 0),
    )
    .reduce((total, bytes) => total + bytes, 0);
  const result = {
    date: new Date().toISOString(),
    machine: machineInfo(WORKSPACE),
    plugin: tarball ? { tarball } : plugin,
    builds: BUILDS,
    cacheBytes: entries.reduce((total, entry) => total + entry.bytes, 0),
    artifactBytes,
    entries,
  };
  const name = tarball ? 'cache-size-before' : 'cache-size';
  writeResults(name, result, report(result, plugin, tarball));
}

function report(
  result: { date: string; machine: Machine; cacheBytes: number; artifactBytes: number; entries: Entry[] },
  plugin: PluginRevision,
  tarball: string | undefined,
): string {
  const builds = result.entries.map((entry) => entry.builds);
  const revision = tarball
    ? `plugin packed as ${tarball}`
    : `plugin at ${plugin.commit.slice(0, 7)}${plugin.modified ? ' with changes' : ''}`;
  return [
    '# Nx cache size after 10 isolated builds of 10 commits',
    '',
    `${result.date}, ${revision}; ${result.machine.cpu} (${result.machine.cpus} CPUs), nx ${result.machine.nx}, dbt ${result.machine.dbt}.`,
    '',
    '| what | figure |',
    '| --- | --- |',
    `| Nx cache entries of the builds | ${result.entries.length} |`,
    `| their size in Nx's cache | ${(result.cacheBytes / MB).toFixed(1)} MB |`,
    `| the builds' own cached artifacts and records (10 builds) | ${(result.artifactBytes / MB).toFixed(1)} MB |`,
    `| builds held by each entry | ${builds.join(', ')} |`,
    '',
  ].join('\n');
}

run('bench', main);
