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

/**
 * The commits that the given refs point at, each with the ref that names it. An entry starting
 * with `refs/` is a pattern of `git for-each-ref` (`refs/tags` is every tag); any other entry is
 * a branch, remote branch or tag of that name, or anything `git rev-parse` resolves (a sha).
 * Entries that name nothing are skipped.
 */
export async function commitsNamedBy(repoRoot: string, entries: string[]): Promise<Map<string, string>> {
  const git = simpleGit(repoRoot);
  const named = new Map<string, string>();
  const patterns = entries.flatMap((entry) =>
    entry.startsWith('refs/') ? [entry] : [`refs/heads/${entry}`, `refs/remotes/*/${entry}`, `refs/tags/${entry}`],
  );
  if (patterns.length > 0) {
    const listing = await git.raw([
      'for-each-ref',
      '--format=%(objectname) %(*objectname) %(refname:short)',
      ...patterns,
    ]);
    for (const line of listing.split('\n').filter(Boolean)) {
      const [object, peeled, name] = line.split(' ');
      const commit = peeled || object;
      if (!named.has(commit)) named.set(commit, name);
    }
  }
  for (const entry of entries.filter((candidate) => !candidate.startsWith('refs/'))) {
    const commit = await resolveCommit(repoRoot, entry).catch(() => undefined);
    if (commit && !named.has(commit)) named.set(commit, entry);
  }
  return named;
}

/** Whether a branch, remote branch, tag or HEAD still leads to `commit`. */
export async function isReachable(repoRoot: string, commit: string): Promise<boolean> {
  const git = simpleGit(repoRoot);
  const containing = await git
    .raw([
      'for-each-ref',
      '--count=1',
      '--format=%(refname)',
      '--contains',
      commit,
      'refs/heads',
      'refs/remotes',
      'refs/tags',
    ])
    .catch(() => '');
  if (containing.trim() !== '') return true;
  const common = await git.raw(['merge-base', commit, 'HEAD']).catch(() => '');
  return common.trim() === commit;
}
