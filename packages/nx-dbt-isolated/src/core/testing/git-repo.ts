/**
 * Test-only helpers: throwaway folders and git repositories under the system temp folder.
 * Used by the spec files; nothing in the plugin imports this.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A new empty folder under the system temp folder, as its real path (git reports real paths). */
export function makeTempDir(prefix = 'nx-dbt-isolated-test-'): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Writes files given relative to `root`, creating their folders. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [file, content] of Object.entries(files)) {
    const path = join(root, file);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
}

export interface TempRepo {
  root: string;
  /** Runs git in the repository and returns its trimmed output. */
  git(...args: string[]): string;
  /** Writes the files, commits everything and returns the new commit's full sha. */
  commit(message: string, files: Record<string, string>): string;
  cleanup(): void;
}

/** A fresh repository on branch `main` with a local identity and no signing. */
export function makeTempRepo(): TempRepo {
  const root = makeTempDir('nx-dbt-isolated-repo-');
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  git('init', '--quiet', '--initial-branch=main');
  git('config', 'user.name', 'Test User');
  git('config', 'user.email', 'test@example.com');
  git('config', 'commit.gpgsign', 'false');
  git('config', 'tag.gpgsign', 'false');
  return {
    root,
    git,
    commit(message, files) {
      writeFiles(root, files);
      git('add', '--all');
      git('commit', '--quiet', '--no-verify', '--message', message);
      return git('rev-parse', 'HEAD');
    },
    cleanup: () => removeDir(root),
  };
}
