import { simpleGit } from 'simple-git';
import { UserError } from './errors';

export const SHORT_HASH_LENGTH = 8;

/** Finds the top of the git repository that holds `dir`. */
export async function repositoryRoot(dir: string): Promise<string> {
  try {
    return (await simpleGit(dir).revparse(['--show-toplevel'])).trim();
  } catch {
    throw new UserError(
      `${dir} is not inside a git repository: isolated builds check commits out of git; run 'git init' and commit the dbt project first.`,
    );
  }
}

/**
 * Resolves any git ref (branch, tag, full or short sha, `HEAD~2`) to the full sha of a commit.
 * The ref goes to git as one argument after `--end-of-options`, never through a shell.
 */
export async function resolveCommit(repoRoot: string, ref: string): Promise<string> {
  if (ref.trim() === '' || ref.startsWith('-') || /[\0\n\r]/.test(ref)) {
    throw new UserError(`ref '${ref}' is not a valid git ref: pass a branch, tag or commit, e.g. --ref=main.`);
  }
  const sha = await simpleGit(repoRoot)
    .raw(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`])
    .then((out) => out.trim())
    .catch(() => '');
  if (!/^[0-9a-f]{40,64}$/.test(sha)) {
    throw new UserError(
      `ref '${ref}' does not name a commit in ${repoRoot}: check the spelling, or fetch it first (git fetch).`,
    );
  }
  return sha;
}
