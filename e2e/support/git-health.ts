import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { git } from '../../fixture-workspace/repo';

/** One entry of `git worktree list --porcelain`. */
export interface WorktreeEntry {
  path: string;
  head?: string;
  detached: boolean;
  /** The reason given, or '' when locked without one; absent when not locked. */
  locked?: string;
  /** Why git would prune it; absent when it would not. */
  prunable?: string;
}

/** What git records of the repository's worktrees, as `git worktree list --porcelain` prints it. */
export function worktreeList(dir: string): WorktreeEntry[] {
  return git(dir, 'worktree', 'list', '--porcelain')
    .split(/\n\n+/)
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const entry: WorktreeEntry = { path: '', detached: false };
      for (const line of block.split('\n')) {
        const [key, ...rest] = line.split(' ');
        const value = rest.join(' ');
        if (key === 'worktree') entry.path = value;
        else if (key === 'HEAD') entry.head = value;
        else if (key === 'detached') entry.detached = true;
        else if (key === 'locked') entry.locked = value;
        else if (key === 'prunable') entry.prunable = value;
      }
      return entry;
    });
}

/** `git fsck` of the repository: its exit code and what it printed. */
export function fsck(dir: string): { code: number | null; output: string } {
  const result = spawnSync('git', ['fsck', '--no-progress'], { cwd: dir, encoding: 'utf8' });
  return { code: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/** Lines of `git fsck` output that report damage (dangling objects are not damage). */
export function fsckErrors(output: string): string[] {
  return output.split('\n').filter((line) => /^(error|fatal|missing|broken|bad)|corrupt/i.test(line));
}

/**
 * The folder under `.git/worktrees` that registers the checkout at `worktree` (git names it
 * after the folder, with a number when that name is taken), if any.
 */
export function worktreeAdminDir(repo: string, worktree: string): string | undefined {
  const admin = join(repo, '.git', 'worktrees');
  if (!existsSync(admin)) return undefined;
  return readdirSync(admin)
    .map((name) => join(admin, name))
    .find((candidate) => {
      const gitdir = join(candidate, 'gitdir');
      return existsSync(gitdir) && readFileSync(gitdir, 'utf8').trim() === join(worktree, '.git');
    });
}
