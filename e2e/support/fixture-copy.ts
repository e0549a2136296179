import { cpSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from '../../fixture-workspace/repo';
import { FIXTURE_AUTHOR } from '../../fixture-workspace/paths';
import { installedWorkspace, type NxResult } from '../../fixture-workspace/workspace';

export interface FixtureCopy {
  dir: string;
  /** Runs the real nx CLI of the workspace. */
  nx(args: string[], env?: NodeJS.ProcessEnv): Promise<NxResult>;
  /** Writes nx.json with this one plugin registration (and targetDefaults, when given). */
  writeNxJson(plugin: unknown, targetDefaults?: object): void;
  /** Commits everything and returns the commit's sha. */
  commit(message: string): string;
  remove(): void;
}

/**
 * A git repository made of a copy of `e2e/fixtures/<name>`, registered as an Nx workspace with the
 * plugin, its files committed once, with the packaged plugin linked in.
 */
export function copyOfFixture(name: string): FixtureCopy {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), `nx-dbt-e2e-${name}-`)));
  cpSync(join(__dirname, '..', 'fixtures', name), dir, { recursive: true });
  const writeNxJson = (plugin: unknown, targetDefaults?: object) =>
    writeFileSync(
      join(dir, 'nx.json'),
      JSON.stringify({ plugins: [plugin], ...(targetDefaults && { targetDefaults }) }, null, 2) + '\n',
    );
  writeNxJson('nx-dbt-isolated');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true }, null, 2) + '\n');
  writeFileSync(
    join(dir, '.gitignore'),
    ['node_modules', '.nx', '.dot/', 'target/', 'dbt_packages/', 'logs/', '*.duckdb*', ''].join('\n'),
  );
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', FIXTURE_AUTHOR);
  git(dir, 'config', 'user.email', 'fixture@example.com');
  git(dir, 'config', 'commit.gpgsign', 'false');
  const commit = (message: string) => {
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', message);
    return git(dir, 'rev-parse', 'HEAD');
  };
  const workspace = installedWorkspace(dir);
  return {
    dir,
    nx: (args, env) => workspace.nx(args, env),
    writeNxJson,
    commit,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
