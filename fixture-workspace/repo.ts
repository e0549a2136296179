import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_AUTHOR, REPO_ROOT } from './paths';

const FIXTURES = join(REPO_ROOT, 'e2e', 'fixtures');

/** The commits of the fixture repository, oldest first, and where its refs point. */
export interface FixtureRepo {
  dir: string;
  /** Tag v1.0: every order counts. */
  v1: string;
  /** Returned orders leave stg_orders (and everything built on it). */
  excludeReturned: string;
  /** payments_by_method gains average_amount. */
  averagePayment: string;
  /** main: countries gains average_lifetime_value. */
  main: string;
  /** Branch feature/vip, from excludeReturned: adds vip_customers. */
  featureVip: string;
}

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function commitOverlay(dir: string, overlay: string, message: string): string {
  cpSync(join(FIXTURES, 'history', overlay), dir, { recursive: true });
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

/**
 * Makes an Nx workspace in `dir` holding the fixture dbt project, as a git repository with real
 * history: four commits on main, each after the first changing model logic, tag v1.0 on the
 * first, and a branch.
 * `plugins` is written to nx.json as is.
 */
export function createFixtureRepo(dir: string, plugins: unknown[] = ['nx-dbt-isolated']): FixtureRepo {
  cpSync(join(FIXTURES, 'workspace'), dir, { recursive: true });
  writeFileSync(join(dir, 'nx.json'), JSON.stringify({ plugins }, null, 2) + '\n');
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'fixture-workspace', private: true }, null, 2) + '\n',
  );
  writeFileSync(join(dir, '.gitignore'), 'node_modules\n.nx\n');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', FIXTURE_AUTHOR);
  git(dir, 'config', 'user.email', 'fixture@example.com');
  git(dir, 'config', 'commit.gpgsign', 'false');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'Analytics project: seeds, staging, marts, finance');
  const v1 = git(dir, 'rev-parse', 'HEAD');
  git(dir, 'tag', 'v1.0');
  const excludeReturned = commitOverlay(dir, '2-exclude-returned', 'Exclude returned orders');
  const averagePayment = commitOverlay(dir, '3-average-payment', 'Average payment per method');
  const main = commitOverlay(dir, '4-country-average', 'Average lifetime value per country');
  git(dir, 'checkout', '-q', '-b', 'feature/vip', excludeReturned);
  const featureVip = commitOverlay(dir, 'feature-vip', 'VIP customers');
  git(dir, 'checkout', '-q', 'main');
  return { dir, v1, excludeReturned, averagePayment, main, featureVip };
}

/**
 * Makes a commit whose tree is `parent`'s plus `files` (path → content) and without `removed`,
 * with git plumbing and a separate index: the working tree, index and HEAD of `dir` are not touched. `branch` is set to
 * it so that the commit is reachable. Returns its sha.
 */
export function commitBeside(
  dir: string,
  parent: string,
  branch: string,
  message: string,
  files: Record<string, string> = {},
  removed: string[] = [],
): string {
  const env = { ...process.env, GIT_INDEX_FILE: join(dir, '.git', `e2e-index-${process.pid}`) };
  const run = (args: string[], input?: string) =>
    execFileSync('git', args, { cwd: dir, env, input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }).trim();
  try {
    run(['read-tree', parent]);
    const blobs = new Map<string, string>();
    const entries = Object.entries(files).map(([path, content]) => {
      let blob = blobs.get(content);
      if (blob === undefined) {
        blob = run(['hash-object', '-w', '--stdin'], content);
        blobs.set(content, blob);
      }
      return `100644 ${blob}\t${path}\n`;
    });
    if (entries.length > 0) run(['update-index', '--index-info'], entries.join(''));
    if (removed.length > 0) run(['update-index', '--force-remove', '--', ...removed]);
    const tree = run(['write-tree']);
    const commit = run(['commit-tree', tree, '-p', parent, '-m', message]);
    run(['update-ref', `refs/heads/${branch}`, commit]);
    return commit;
  } finally {
    rmSync(env.GIT_INDEX_FILE, { force: true });
  }
}
