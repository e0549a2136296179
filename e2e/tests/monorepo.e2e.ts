import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryDuckDb } from '../../fixture-workspace/duckdb';
import { relationsIn } from '../support/duckdb';
import { git, commitBeside } from '../../fixture-workspace/repo';
import { worktreeList } from '../support/git-health';
import {
  cloneMonorepoWorkspace,
  createMonorepoWorkspace,
  FILES_PER_SERVICE,
  type MonorepoWorkspace,
} from '../support/monorepo-repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import type { NxResult } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);

/** nx exited 0; when it did not, the failure shows the end of its output. */
const expectSuccess = (result: NxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

/** The JSON nx printed, from the first `open` of its output. */
const jsonIn = (result: NxResult, open: '[' | '{') => JSON.parse(result.output.slice(result.output.indexOf(open)));

const worktreeOf = (ws: MonorepoWorkspace, commit: string) => join(ws.dir, '.dot', short(commit), 'worktree');

/** The record of a build of `project` (dbt target dev) at `commit`. */
function buildRecord(ws: MonorepoWorkspace, commit: string, project: string) {
  return JSON.parse(readFileSync(join(ws.dir, '.dot', short(commit), project, 'dev', 'build.json'), 'utf8'));
}

/** The committed files a checkout holds on disk, sorted. */
function checkedOutFiles(worktree: string): string[] {
  return git(worktree, 'ls-files')
    .split('\n')
    .filter((file) => existsSync(join(worktree, file)))
    .sort();
}

/** The files `commit` has in `folders`, with those at the repository's root, sorted; every file for 'all'. */
function committedFiles(ws: MonorepoWorkspace, commit: string, folders: string[] | 'all'): string[] {
  return git(ws.dir, 'ls-tree', '-r', '--name-only', commit)
    .split('\n')
    .filter(
      (file) => folders === 'all' || !file.includes('/') || folders.some((folder) => file.startsWith(`${folder}/`)),
    )
    .sort();
}

/** Every row of `relation`, in a stable order. */
const rowsOf = (warehouse: string, relation: string) =>
  queryDuckDb(warehouse, `select * from ${relation} order by all`);

/** What manifest.json says each node's files hash to, by unique id. */
function nodeChecksums(ws: MonorepoWorkspace, commit: string, project: string): Record<string, string> {
  const manifest = JSON.parse(
    readFileSync(join(ws.dir, '.dot', short(commit), project, 'dev', 'target', 'manifest.json'), 'utf8'),
  ) as { nodes: Record<string, { checksum: { checksum: string } }> };
  return Object.fromEntries(Object.entries(manifest.nodes).map(([id, node]) => [id, node.checksum.checksum]));
}

describe('a dbt monorepo: project dependencies, affected builds and sparse checkouts', () => {
  let ws: MonorepoWorkspace;
  const warehouseOf = (project: string) => join(ws.dir, 'dbt', project, 'warehouse.duckdb');
  const build = (project: string, ref: string, ...args: string[]) =>
    ws.nx(['run', `${project}:isolated-build`, `--ref=${ref}`, ...args]);

  beforeAll(() => {
    ws = createMonorepoWorkspace();
  });
  afterAll(() => ws.remove());

  it('draws an edge from each dbt project to the local packages and dbt Mesh projects it uses', async () => {
    mkdirSync(join(ws.dir, '.nx'), { recursive: true });
    const graphFile = join(ws.dir, '.nx', 'graph.json');
    expectSuccess(await ws.nx(['graph', `--file=${graphFile}`]));
    const { graph } = JSON.parse(readFileSync(graphFile, 'utf8'));
    expect(Object.keys(graph.nodes).sort()).toEqual(['analytics', 'finance', 'marketing', 'shared']);
    const edges = (project: string) =>
      (graph.dependencies[project] as { source: string; target: string; type: string }[])
        .map(({ source, target, type }) => `${source} -> ${target} (${type})`)
        .sort();
    expect(edges('analytics')).toEqual(['analytics -> shared (static)']);
    expect(edges('finance')).toEqual(['finance -> analytics (static)', 'finance -> shared (static)']);
    expect(edges('marketing')).toEqual([]);
    expect(edges('shared')).toEqual([]);

    // Each edge comes from the file that declares it: Nx's cached file map keeps it with that file.
    const { fileMap } = JSON.parse(readFileSync(join(ws.dir, '.nx', 'workspace-data', 'file-map.json'), 'utf8'));
    const filesWithEdges = Object.values(fileMap.projectFileMap as Record<string, { file: string; deps?: string[] }[]>)
      .flat()
      .filter((file) => file.deps !== undefined && file.deps.length > 0)
      .map(({ file, deps }) => `${file}: ${deps!.join(', ')}`)
      .sort();
    expect(filesWithEdges).toEqual([
      'dbt/analytics/packages.yml: shared',
      'dbt/finance/dependencies.yml: analytics',
      'dbt/finance/packages.yml: shared',
    ]);

    // The package has no profile: an Nx project without targets.
    const shared = await ws.nx(['show', 'project', 'shared', '--json']);
    expectSuccess(shared);
    const sharedProject = jsonIn(shared, '{');
    expect(sharedProject.root).toBe('dbt/shared');
    expect(sharedProject.targets).toEqual({});
  });

  it('nx affected selects the builds of the projects that use a changed package, and no others', async () => {
    const affected = async (base: string, head: string) => {
      const result = await ws.nx([
        'show',
        'projects',
        '--affected',
        '-t',
        'isolated-build',
        `--base=${base}`,
        `--head=${head}`,
        '--json',
      ]);
      expectSuccess(result);
      return (jsonIn(result, '[') as string[]).sort();
    };
    expect(git(ws.dir, 'diff', '--name-only', ws.initial, ws.sharedChange)).toBe('dbt/shared/macros/release_label.sql');
    expect(await affected(ws.initial, ws.sharedChange)).toEqual(['analytics', 'finance']);
    expect(git(ws.dir, 'diff', '--name-only', ws.sharedChange, ws.marketingChange)).toBe(
      'dbt/marketing/models/campaigns.sql',
    );
    expect(await affected(ws.sharedChange, ws.marketingChange)).toEqual(['marketing']);
  });

  it('builds each commit with the shared package as that commit has it, not as the working tree has it', async () => {
    const macro = join(ws.dir, 'dbt', 'shared', 'macros', 'release_label.sql');
    const committed = readFileSync(macro, 'utf8');
    writeFileSync(macro, committed.replace("'shared v2'", "'uncommitted'"));
    try {
      expectSuccess(await build('analytics', ws.initial));
      expectSuccess(await build('analytics', ws.sharedChange));
    } finally {
      writeFileSync(macro, committed);
    }
    for (const [commit, label] of [
      [ws.initial, 'shared v1'],
      [ws.sharedChange, 'shared v2'],
    ]) {
      const schema = `analytics_${short(commit)}`;
      // The package's model is built too, into the consumer's schema.
      expect(relationsIn(warehouseOf('analytics'), schema)).toEqual([
        `${schema}.analytics_report`,
        `${schema}.shared_numbers`,
      ]);
      expect(queryDuckDb(warehouseOf('analytics'), `select * from ${schema}.analytics_report`)).toEqual([
        { label, numbers: 2 },
      ]);
    }
  });

  it('checks out only the folders a build reads, and widens that checkout for the next project at the commit', async () => {
    const commit = ws.marketingChange;
    const worktree = worktreeOf(ws, commit);
    const gitConfig = join(ws.dir, '.git', 'config');
    const configBefore = readFileSync(gitConfig, 'utf8');
    const stateBefore = ws.gitState();

    const analytics = await build('analytics', commit);
    expectSuccess(analytics);
    expect(analytics.output).toContain(`• checkout ${commit.slice(0, 12)} (sparse: dbt/analytics, dbt/shared)`);
    expect(buildRecord(ws, commit, 'analytics')).toMatchObject({
      status: 'succeeded',
      checkout: 'made',
      checkoutFolders: ['dbt/analytics', 'dbt/shared'],
    });
    const analyticsFiles = committedFiles(ws, commit, ['dbt/analytics', 'dbt/shared']);
    expect(analyticsFiles).toEqual(expect.arrayContaining(['nx.json', 'dbt/shared/macros/release_label.sql']));
    expect(checkedOutFiles(worktree)).toEqual(analyticsFiles);
    for (const absent of ['dbt/finance', 'dbt/marketing', 'services']) {
      expect(existsSync(join(worktree, absent))).toBe(false);
    }

    const finance = await build('finance', commit);
    expectSuccess(finance);
    expect(finance.output).toContain(`• checkout ${commit.slice(0, 12)} (sparse: dbt/finance, dbt/shared)`);
    expect(buildRecord(ws, commit, 'finance')).toMatchObject({
      status: 'succeeded',
      checkout: 'widened',
      checkoutFolders: ['dbt/analytics', 'dbt/finance', 'dbt/shared'],
    });
    expect(checkedOutFiles(worktree)).toEqual(
      committedFiles(ws, commit, ['dbt/analytics', 'dbt/finance', 'dbt/shared']),
    );
    for (const absent of ['dbt/marketing', 'services']) expect(existsSync(join(worktree, absent))).toBe(false);
    // Still a valid checkout of the commit, and the earlier build's own files are still there.
    expect(git(worktree, 'status', '--porcelain', '--untracked-files=no')).toBe('');
    expect(git(worktree, 'rev-parse', 'HEAD')).toBe(commit);
    expect(existsSync(join(worktree, 'dbt', 'analytics', 'dbt_packages', 'shared', 'dbt_project.yml'))).toBe(true);
    expect(worktreeList(ws.dir).map((entry) => entry.path)).toContain(worktree);

    for (const project of ['analytics', 'finance']) {
      expect(relationsIn(warehouseOf(project), `${project}_${short(commit)}`)).toEqual([
        `${project}_${short(commit)}.${project}_report`,
        `${project}_${short(commit)}.shared_numbers`,
      ]);
    }
    expect(queryDuckDb(warehouseOf('finance'), `select * from finance_${short(commit)}.finance_report`)).toEqual([
      { label: 'shared v2', total: 3 },
    ]);

    // The user's repository is as it was: config, working tree (not sparse), branches, stash, HEAD.
    expect(readFileSync(gitConfig, 'utf8')).toBe(configBefore);
    expect(configBefore).not.toMatch(/worktreeConfig|sparse/i);
    expect(existsSync(join(ws.dir, '.git', 'config.worktree'))).toBe(false);
    expect(existsSync(join(ws.dir, '.git', 'info', 'sparse-checkout'))).toBe(false);
    expect(
      git(ws.dir, 'ls-files', '-t')
        .split('\n')
        .filter((line) => !line.startsWith('H ')),
    ).toEqual([]);
    expect(ws.gitState()).toEqual(stateBefore);
  });

  it('builds the same nodes and rows from a sparse checkout as from every file', async () => {
    // analytics was built at the first commit from a sparse checkout; a clone has the same commits.
    expect(buildRecord(ws, ws.initial, 'analytics').checkoutFolders).toEqual(['dbt/analytics', 'dbt/shared']);
    const clone = cloneMonorepoWorkspace(ws);
    try {
      const full = await clone.nx(['run', 'analytics:isolated-build', `--ref=${ws.initial}`, '--sparseCheckout=false']);
      expectSuccess(full);
      expect(full.output).toContain(`• checkout ${ws.initial.slice(0, 12)} (every file)`);
      expect(buildRecord(clone, ws.initial, 'analytics')).toMatchObject({
        status: 'succeeded',
        checkout: 'made',
        checkoutFolders: 'all',
      });
      expect(checkedOutFiles(worktreeOf(clone, ws.initial))).toEqual(committedFiles(clone, ws.initial, 'all'));

      const sparse = nodeChecksums(ws, ws.initial, 'analytics');
      expect(Object.keys(sparse).sort()).toEqual(['model.analytics.analytics_report', 'model.shared.shared_numbers']);
      expect(nodeChecksums(clone, ws.initial, 'analytics')).toEqual(sparse);

      const schema = `analytics_${short(ws.initial)}`;
      const cloneWarehouse = join(clone.dir, 'dbt', 'analytics', 'warehouse.duckdb');
      const relations = relationsIn(warehouseOf('analytics'), schema);
      expect(relations).toHaveLength(2);
      expect(relationsIn(cloneWarehouse, schema)).toEqual(relations);
      for (const relation of relations) {
        expect(rowsOf(cloneWarehouse, relation)).toEqual(rowsOf(warehouseOf('analytics'), relation));
      }
    } finally {
      clone.remove();
    }
  });

  it('checks out every file when dbt_project.yml names a folder with Jinja, and dbt reads that folder', async () => {
    const marketing = readFileSync(join(ws.dir, 'dbt', 'marketing', 'dbt_project.yml'), 'utf8');
    const jinja = commitBeside(ws.dir, ws.marketingChange, 'jinja-paths', 'Marketing macros from a templated folder', {
      'dbt/marketing/dbt_project.yml': `${marketing}macro-paths: ['macros', "{{ env_var('MARKETING_MACROS', 'channel_macros') }}"]\n`,
      'dbt/marketing/channel_macros/campaign_channel.sql': "{% macro campaign_channel() %}'email'{% endmacro %}\n",
      'dbt/marketing/models/campaigns.sql': "select 'summer' as campaign, {{ campaign_channel() }} as channel\n",
    });

    const result = await build('marketing', 'jinja-paths');
    expectSuccess(result);
    expect(result.output).toMatch(
      /• checking out every file: dbt\/marketing\/dbt_project\.yml sets macro-paths with Jinja/,
    );
    expect(result.output).toContain(`• checkout ${jinja.slice(0, 12)} (every file)`);
    expect(buildRecord(ws, jinja, 'marketing')).toMatchObject({
      status: 'succeeded',
      checkout: 'made',
      checkoutFolders: 'all',
    });
    expect(checkedOutFiles(worktreeOf(ws, jinja))).toEqual(committedFiles(ws, jinja, 'all'));
    expect(queryDuckDb(warehouseOf('marketing'), `select * from marketing_${short(jinja)}.campaigns`)).toEqual([
      { campaign: 'summer', channel: 'email' },
    ]);
  });

  it('adds the folders of --checkoutFolders to a sparse checkout', async () => {
    // The second commit's checkout holds analytics and the package (built above).
    const commit = ws.sharedChange;
    const worktree = worktreeOf(ws, commit);
    expect(checkedOutFiles(worktree)).toEqual(committedFiles(ws, commit, ['dbt/analytics', 'dbt/shared']));

    const result = await build('marketing', commit, '--checkoutFolders=services/api');
    expectSuccess(result);
    expect(result.output).toContain(`• checkout ${commit.slice(0, 12)} (sparse: dbt/marketing, services/api)`);
    const folders = ['dbt/analytics', 'dbt/marketing', 'dbt/shared', 'services/api'];
    expect(buildRecord(ws, commit, 'marketing')).toMatchObject({
      status: 'succeeded',
      checkout: 'widened',
      checkoutFolders: folders,
    });
    expect(checkedOutFiles(worktree)).toEqual(committedFiles(ws, commit, folders));
    expect(readdirSync(join(worktree, 'services', 'api', 'src'))).toHaveLength(FILES_PER_SERVICE);
    for (const absent of ['services/web', 'dbt/finance']) expect(existsSync(join(worktree, absent))).toBe(false);
    expect(queryDuckDb(warehouseOf('marketing'), `select * from marketing_${short(commit)}.campaigns`)).toEqual([
      { campaign: 'spring' },
    ]);
  });
});
