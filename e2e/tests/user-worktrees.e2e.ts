import { appendFileSync, existsSync, mkdtempSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git, commitBeside } from '../../fixture-workspace/repo';
import { worktreeAdminDir, worktreeList } from '../support/git-health';
import { outcome, SUCCEEDED } from '../support/outcome';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';

const MODEL = 'analytics/models/marts/customers.sql';

describe("the user's own git worktrees are not the plugin's", () => {
  let ws: TestWorkspace;
  let outside: string;

  beforeAll(() => {
    ws = createTestWorkspace();
    outside = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-e2e-user-worktree-')));
  });
  afterAll(() => {
    ws.remove();
    rmSync(outside, { recursive: true, force: true });
  });

  it('a worktree the user moved away, with a staged change, survives an isolated build of a new commit and a clean', async () => {
    const userWorktree = join(outside, 'vip');
    git(ws.dir, 'worktree', 'add', '--quiet', userWorktree, 'feature/vip');
    appendFileSync(join(userWorktree, MODEL), '-- reviewed\n');
    git(userWorktree, 'add', MODEL);
    const before = {
      head: git(userWorktree, 'rev-parse', 'HEAD'),
      branch: git(userWorktree, 'symbolic-ref', 'HEAD'),
      staged: git(userWorktree, 'diff', '--cached'),
      reflog: git(userWorktree, 'reflog', 'show', 'HEAD'),
    };
    const admin = worktreeAdminDir(ws.dir, userWorktree)!;
    const moved = join(outside, 'moved-away');
    renameSync(userWorktree, moved);
    expect(worktreeList(ws.dir).find((entry) => entry.path === userWorktree)?.prunable).toBeDefined();

    const commit = commitBeside(ws.dir, ws.main, 'user-worktrees/new', 'A commit built from nothing');
    const checkout = join(ws.dir, '.dot', commit.slice(0, 8), 'worktree');
    expect(outcome(await ws.nx(['run', 'analytics:isolated-build', `--ref=${commit}`, '--skip-nx-cache']))).toEqual(
      SUCCEEDED,
    );
    expect(worktreeList(ws.dir).map((entry) => entry.path)).toContain(checkout);
    expect(outcome(await ws.nx(['run', 'analytics:clean', `--ref=${commit}`]))).toEqual(SUCCEEDED);
    expect(worktreeList(ws.dir).map((entry) => entry.path)).toEqual([ws.dir, userWorktree]);
    for (const file of ['HEAD', 'index', 'logs/HEAD']) expect(existsSync(join(admin, file))).toBe(true);

    renameSync(moved, userWorktree);
    git(userWorktree, 'worktree', 'repair');
    expect({
      head: git(userWorktree, 'rev-parse', 'HEAD'),
      branch: git(userWorktree, 'symbolic-ref', 'HEAD'),
      staged: git(userWorktree, 'diff', '--cached'),
      reflog: git(userWorktree, 'reflog', 'show', 'HEAD'),
    }).toEqual(before);
    expect(git(userWorktree, 'status', '--porcelain')).toBe(`M  ${MODEL}`);
  });
});
