import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { git } from '../../fixture-workspace/repo';
import type { NxResult } from '../../fixture-workspace/workspace';
import { relationsIn } from '../support/duckdb';
import { copyOfFixture, type FixtureCopy } from '../support/fixture-copy';
import { outcome, SUCCEEDED } from '../support/outcome';

/** The escape character that starts a colour code. */
const ESC = String.fromCharCode(27);
const short = (sha: string) => sha.slice(0, 8);
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);
const jsonIn = (result: NxResult, open: '[' | '{') => JSON.parse(result.output.slice(result.output.indexOf(open)));

/** Every project of the fixture, by its Nx name. */
const PROJECTS = {
  analytics: 'dbt/analytics',
  pkg_a: 'dbt/vendor/pkg_a',
  dbt_utils: 'dbt/vendor/dbt_utils',
  dbt_date: 'dbt/vendor/dbt_date',
  // Two projects are named integration_tests: the first by folder keeps the name.
  integration_tests: 'dbt/vendor/dbt_date/integration_tests',
  'dbt-vendor-dbt_utils-integration_tests': 'dbt/vendor/dbt_utils/integration_tests',
};

describe('a workspace with vendored dbt packages (e2e/fixtures/vendored)', () => {
  let ws: FixtureCopy;
  let dir: string;
  let initial: string;
  const nx = (args: string[], env?: NodeJS.ProcessEnv) => ws.nx(args, env);
  const warehouse = () => join(dir, 'dbt', 'analytics', 'warehouse.duckdb');
  const writeNxJson = (plugin: unknown) => ws.writeNxJson(plugin);

  beforeAll(() => {
    ws = copyOfFixture('vendored');
    dir = ws.dir;
    initial = ws.commit('analytics with vendored packages');
  });
  afterAll(() => ws.remove());

  it('names every dbt project uniquely and gives build targets only to the one that is not a package', async () => {
    const shown = await nx(['show', 'projects', '--json']);
    expectSuccess(shown);
    expect((jsonIn(shown, '[') as string[]).sort()).toEqual(Object.keys(PROJECTS).sort());

    const project = async (name: string) => {
      const result = await nx(['show', 'project', name, '--json']);
      expectSuccess(result);
      return jsonIn(result, '{') as {
        root: string;
        targets: Record<string, unknown>;
        metadata: { description: string };
      };
    };
    const analytics = await project('analytics');
    expect(Object.keys(analytics.targets).sort()).toEqual([
      'clean',
      'dbt',
      'diff',
      'docs',
      'isolated-build',
      'promote',
    ]);
    const why: Record<string, string> = {
      pkg_a: 'dbt/analytics installs it as a local package',
      dbt_utils: 'it has no profile',
      dbt_date: 'it has no profile',
      integration_tests: 'it lies inside the package at dbt/vendor/dbt_date',
      'dbt-vendor-dbt_utils-integration_tests': 'it lies inside the package at dbt/vendor/dbt_utils',
    };
    for (const [name, reason] of Object.entries(why)) {
      const shownProject = await project(name);
      expect({ name, root: shownProject.root, targets: shownProject.targets }).toEqual({
        name,
        root: PROJECTS[name as keyof typeof PROJECTS],
        targets: {},
      });
      expect(shownProject.metadata.description).toContain(reason);
    }
    expect((await project('dbt-vendor-dbt_utils-integration_tests')).metadata.description).toContain(
      'named by its folder: a project nearer the workspace root is named integration_tests',
    );
  });

  it("builds with nx run-many, checking out a package's own local package where dbt resolves it", async () => {
    const built = await nx(['run-many', '-t', 'isolated-build', '--output-style=static']);
    expectSuccess(built);
    expect(built.output).toContain('Successfully ran target isolated-build for project analytics');
    expect(built.output).toContain(
      `• checkout ${initial.slice(0, 12)} (sparse: dbt/analytics, dbt/vendor/dbt_utils, dbt/vendor/pkg_a)`,
    );
    const schema = `analytics_${short(initial)}`;
    expect(relationsIn(warehouse(), schema)).toEqual([`${schema}.labels`]);
    expect(queryDuckDb(warehouse(), `select label, answer from ${schema}.labels`)).toEqual([
      { label: 'pkg_a v1 with answer 42', answer: 42 },
    ]);
    const worktree = join(dir, '.dot', short(initial), 'worktree');
    expect(existsSync(join(worktree, 'dbt', 'vendor', 'dbt_utils', 'macros', 'answer.sql'))).toBe(true);
    expect(existsSync(join(worktree, 'dbt', 'vendor', 'dbt_date'))).toBe(false);
    expect(existsSync(join(worktree, 'dbt', 'vendor', 'vendor'))).toBe(false);
  });

  it('draws the edges dbt deps follows, a package’s own local package included', async () => {
    mkdirSync(join(dir, '.nx'), { recursive: true });
    const graphFile = join(dir, '.nx', 'graph.json');
    expectSuccess(await nx(['graph', `--file=${graphFile}`]));
    const { graph } = JSON.parse(readFileSync(graphFile, 'utf8')) as {
      graph: { dependencies: Record<string, { source: string; target: string }[]> };
    };
    const edges = Object.values(graph.dependencies)
      .flat()
      .map(({ source, target }) => `${source} -> ${target}`)
      .sort();
    expect(edges).toEqual([
      'analytics -> dbt_utils',
      'analytics -> pkg_a',
      'dbt-vendor-dbt_utils-integration_tests -> dbt_utils',
      'integration_tests -> dbt_date',
      'pkg_a -> dbt_utils',
    ]);
  });

  it("leaves out the folders the plugin's registration excludes, and gives targets to the packages it asks for", async () => {
    writeNxJson({
      plugin: 'nx-dbt-isolated',
      exclude: ['dbt/vendor/dbt_date/**'],
      options: { buildablePackages: ['dbt/vendor/pkg_a'] },
    });
    try {
      const shown = await nx(['show', 'projects', '--json']);
      expectSuccess(shown);
      expect((jsonIn(shown, '[') as string[]).sort()).toEqual(['analytics', 'dbt_utils', 'integration_tests', 'pkg_a']);
      const pkgA = await nx(['show', 'project', 'pkg_a', '--json']);
      expectSuccess(pkgA);
      expect(Object.keys(jsonIn(pkgA, '{').targets).sort()).toEqual([
        'clean',
        'dbt',
        'diff',
        'docs',
        'isolated-build',
        'promote',
      ]);
    } finally {
      writeNxJson('nx-dbt-isolated');
    }
  });

  it("says that uncommitted changes to a project's packages are not in a build of HEAD, on a cache hit too", async () => {
    const macro = join(dir, 'dbt', 'vendor', 'pkg_a', 'macros', 'label.sql');
    const committed = readFileSync(macro, 'utf8');
    writeFileSync(macro, committed.replace('pkg_a v1', 'uncommitted'));
    try {
      const again = await nx(['run', 'analytics:isolated-build']);
      expectSuccess(again);
      // Nx 23 keys the build on the commit alone, so the edit is a hit: the hook still says it.
      expect(again.output).toMatch(/Nx read the output from the cache/);
      expect(again.output).toContain(
        `analytics: uncommitted changes to 1 file (dbt/vendor/pkg_a/macros/label.sql) in dbt/analytics, dbt/vendor/pkg_a, dbt/vendor/dbt_utils are not in this build of HEAD (${short(initial)}), which built the commit: commit them (or git stash them) to build them.`,
      );
      // A build that runs says it too, after its summary; the warehouse holds the commit's label.
      const rebuilt = await nx(['run', 'analytics:isolated-build', '--skip-nx-cache']);
      expectSuccess(rebuilt);
      expect(rebuilt.output).toMatch(
        /Isolated build succeeded[\s\S]*nx-dbt-isolated: analytics: uncommitted changes to 1 file/,
      );
      expect(queryDuckDb(warehouse(), `select label from analytics_${short(initial)}.labels`)).toEqual([
        { label: 'pkg_a v1 with answer 42' },
      ]);
    } finally {
      writeFileSync(macro, committed);
    }
  });

  it('keys a build by its project folder: a project renamed in project.json builds each commit of its own', async () => {
    const projectJson = join(dir, 'dbt', 'analytics', 'project.json');
    writeFileSync(projectJson, JSON.stringify({ name: 'dbt-analytics' }));
    try {
      expectSuccess(await nx(['run', 'dbt-analytics:isolated-build']));
      const macro = join(dir, 'dbt', 'vendor', 'pkg_a', 'macros', 'label.sql');
      writeFileSync(macro, readFileSync(macro, 'utf8').replace('pkg_a v1', 'pkg_a v2'));
      git(dir, 'add', macro);
      git(dir, 'commit', '-q', '-m', 'pkg_a v2');
      const second = git(dir, 'rev-parse', 'HEAD');

      const rebuilt = await nx(['run', 'dbt-analytics:isolated-build']);
      expectSuccess(rebuilt);
      expect(rebuilt.output).not.toMatch(/Nx read the output from the cache/);
      expect(rebuilt.output).toContain(`analytics_${short(second)}`);
      expect(queryDuckDb(warehouse(), `select label from analytics_${short(second)}.labels`)).toEqual([
        { label: 'pkg_a v2 with answer 42' },
      ]);
    } finally {
      rmSync(projectJson);
    }
  });

  it("colours the plugin's and dbt's output only where the user asks for it or a terminal reads it", async () => {
    const build = (env: NodeJS.ProcessEnv) => nx(['run', 'analytics:isolated-build', '--skip-nx-cache'], env);
    // Not on a terminal (Nx reads the task through a pipe), and Nx's own FORCE_COLOR=true for the task.
    const piped = await build({ FORCE_COLOR: undefined, NO_COLOR: undefined });
    expectSuccess(piped);
    expect(piped.output).toContain('Running with dbt=');
    // Nx's own lines are Nx's (picocolors colours them where CI is set): dbt's and the plugin's are plain.
    const pluginsAndDbts = piped.output
      .split('\n')
      .filter((line) => /Running with dbt=|^\S*• |nx-dbt-isolated|Isolated build/.test(line));
    expect(pluginsAndDbts.length).toBeGreaterThan(5);
    expect(pluginsAndDbts.filter((line) => line.includes(ESC))).toEqual([]);
    const forced = await build({ FORCE_COLOR: '1', NO_COLOR: undefined });
    expectSuccess(forced);
    expect(forced.output).toMatch(new RegExp(`${ESC}\\[0m\\d\\d:\\d\\d:\\d\\d {2}Running with dbt=`));
    const refused = await build({ FORCE_COLOR: '1', NO_COLOR: '1' });
    expectSuccess(refused);
    expect(refused.output).not.toMatch(new RegExp(`${ESC}\\[0m\\d\\d:\\d\\d:\\d\\d`));
  });
});
