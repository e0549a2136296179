import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git } from '../../fixture-workspace/repo';
import { FIXTURE_AUTHOR } from '../../fixture-workspace/paths';
import { installedWorkspace, type NxResult } from '../../fixture-workspace/workspace';

const FIXTURE = join(__dirname, '..', 'fixtures', 'monorepo');

/** Folders of generated files no dbt build reads, and how many files each holds. */
export const SERVICE_FOLDERS = ['services/api', 'services/web'];
export const FILES_PER_SERVICE = 150;

export interface MonorepoWorkspace {
  dir: string;
  /** The shared package's release_label() says 'shared v1'. */
  initial: string;
  /** Changes only dbt/shared/macros/release_label.sql: 'shared v2'. */
  sharedChange: string;
  /** main: changes only dbt/marketing/models/campaigns.sql. */
  marketingChange: string;
  /** Runs the real nx CLI of the workspace; resolves with its exit code and combined output. */
  nx(args: string[], env?: NodeJS.ProcessEnv): Promise<NxResult>;
  /** What the user would lose if a build touched their repository: status, branches, stash, HEAD. */
  gitState(): string;
  remove(): void;
}

/**
 * An Nx workspace holding a dbt monorepo, as a git repository with three commits on main: a
 * shared dbt package (no profile) that analytics and finance install with `local: ../shared`
 * (finance also names analytics as a dbt Mesh project), marketing that uses nothing, and
 * services/ with a few hundred files no build needs. The packaged plugin is linked in.
 */
export function createMonorepoWorkspace(dir = newWorkspaceFolder()): MonorepoWorkspace {
  cpSync(FIXTURE, dir, { recursive: true });
  for (const folder of SERVICE_FOLDERS) {
    for (let index = 0; index < FILES_PER_SERVICE; index++) {
      const file = join(dir, folder, 'src', `module_${String(index).padStart(3, '0')}.ts`);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `export const value${index} = ${index};\n`);
    }
  }
  writeFileSync(join(dir, 'nx.json'), JSON.stringify({ plugins: ['nx-dbt-isolated'] }, null, 2) + '\n');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'monorepo', private: true }, null, 2) + '\n');
  writeFileSync(
    join(dir, '.gitignore'),
    ['node_modules', '.nx', 'target/', 'dbt_packages/', 'logs/', '*.duckdb', '*.duckdb.wal', ''].join('\n'),
  );
  git(dir, 'init', '-q', '-b', 'main');
  configureAuthor(dir);
  const commit = (message: string) => {
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', message);
    return git(dir, 'rev-parse', 'HEAD');
  };
  const initial = commit('dbt monorepo: shared package, analytics, finance, marketing; services');
  edit(join(dir, 'dbt', 'shared', 'macros', 'release_label.sql'), "'shared v1'", "'shared v2'");
  const sharedChange = commit('Shared release label v2');
  edit(join(dir, 'dbt', 'marketing', 'models', 'campaigns.sql'), "'spring'", "'summer'");
  const marketingChange = commit('Marketing: summer campaign');
  return { ...workspaceAt(dir), initial, sharedChange, marketingChange };
}

/**
 * A `git clone` of `from` with the plugin linked in: the same commits, so the same short hashes
 * and schema names, but its own `.dot`, Nx cache and DuckDB files.
 */
export function cloneMonorepoWorkspace(from: MonorepoWorkspace, dir = newWorkspaceFolder()): MonorepoWorkspace {
  git(from.dir, 'clone', '-q', from.dir, dir);
  configureAuthor(dir);
  return {
    ...workspaceAt(dir),
    initial: from.initial,
    sharedChange: from.sharedChange,
    marketingChange: from.marketingChange,
  };
}

function newWorkspaceFolder(): string {
  return realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-e2e-monorepo-')));
}

function configureAuthor(dir: string): void {
  git(dir, 'config', 'user.name', FIXTURE_AUTHOR);
  git(dir, 'config', 'user.email', 'fixture@example.com');
  git(dir, 'config', 'commit.gpgsign', 'false');
}

function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no ${from}`);
  writeFileSync(file, text.replace(from, to));
}

function workspaceAt(dir: string): Pick<MonorepoWorkspace, 'dir' | 'nx' | 'gitState' | 'remove'> {
  return { dir, ...installedWorkspace(dir) };
}
