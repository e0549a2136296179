import { simpleGit, type SimpleGit } from 'simple-git';
import { UserError } from '../workspace/errors';

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
 * The ref goes to git as one argument after `--end-of-options`, never through a shell. A ref
 * that names no commit gets one line saying why (an empty repository, an ambiguous short sha,
 * a shallow clone, a misspelt name with the names it is close to) and what to do about it.
 */
export async function resolveCommit(repoRoot: string, ref: string): Promise<string> {
  if (!isValidRef(ref)) {
    throw new UserError(`ref '${ref}' is not a valid git ref: pass a branch, tag or commit, e.g. --ref=main.`);
  }
  const git = simpleGit(repoRoot);
  const sha = await commitOf(git, ref);
  if (sha) {
    await refuseTagAndBranch(git, ref);
    return sha;
  }
  throw await unresolvedRef(git, repoRoot, ref);
}

/**
 * A name that is both a tag and a branch at different commits: git picks the tag and only warns
 * on stderr, so the build would silently be of whichever the user did not mean.
 */
async function refuseTagAndBranch(git: SimpleGit, ref: string): Promise<void> {
  const [tag, branch] = await Promise.all([commitOf(git, `refs/tags/${ref}`), commitOf(git, `refs/heads/${ref}`)]);
  if (!tag || !branch || tag === branch) return;
  throw new UserError(
    `ref '${ref}' is both a tag (${tag.slice(0, 12)}) and a branch (${branch.slice(0, 12)}): say which with --ref=refs/tags/${ref} or --ref=refs/heads/${ref}.`,
  );
}

/** Refs that git would read as an option, or that span lines, are refused before git sees them. */
function isValidRef(ref: string): boolean {
  return ref.trim() !== '' && !ref.startsWith('-') && !/[\0\n\r]/.test(ref);
}

/** The full sha of the commit `ref` names, or undefined. */
async function commitOf(git: SimpleGit, ref: string): Promise<string | undefined> {
  const sha = await git
    .raw(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`])
    .then((out) => out.trim())
    .catch(() => '');
  return /^[0-9a-f]{40,64}$/.test(sha) ? sha : undefined;
}

/** The error for a ref that names no commit, saying why where git can tell. */
async function unresolvedRef(git: SimpleGit, repoRoot: string, ref: string): Promise<UserError> {
  if (await hasNoCommits(git)) {
    return new UserError(
      `the repository at ${repoRoot} has no commits yet, so ref '${ref}' names nothing to build: commit the dbt project first (git add, then git commit), then build a ref of it.`,
    );
  }
  // What follows only words the message better: where git fails at it, the plain message stays.
  const ambiguity = await ambiguousCommits(git, ref).catch(() => ({ candidates: [], more: false }));
  if (ambiguity.candidates.length > 1) return ambiguityError(repoRoot, ref, ambiguity);
  const suggestions = await closeNames(git, ref).catch(() => []);
  const hint = suggestions.length > 0 ? ` (did you mean ${orList(suggestions)}?)` : '';
  if (await isShallow(git)) {
    return new UserError(
      `ref '${ref}' does not name a commit in ${repoRoot}, a shallow clone that may not hold it${hint}: fetch more history with 'git fetch --deepen=<commits>' or 'git fetch --unshallow' (a branch or tag that was not cloned: 'git fetch origin <name>'; in GitHub Actions set fetch-depth: 0 on actions/checkout), then build again.`,
    );
  }
  return new UserError(
    `ref '${ref}' does not name a commit in ${repoRoot}${hint}: check the spelling, or fetch it first (git fetch).`,
  );
}

/** No branch, tag or HEAD leads to a commit: `git init` and nothing committed yet. */
async function hasNoCommits(git: SimpleGit): Promise<boolean> {
  if (await commitOf(git, 'HEAD')) return false;
  const anyRef = await git.raw(['for-each-ref', '--count=1', '--format=%(refname)']).catch(() => 'unknown');
  return anyRef.trim() === '';
}

async function isShallow(git: SimpleGit): Promise<boolean> {
  const answer = await git.raw(['rev-parse', '--is-shallow-repository']).catch(() => 'false');
  return answer.trim() === 'true';
}

interface Ambiguity {
  /** Commits and annotated tags found with the prefix, as `<unique short sha> (<what it is>)`. */
  candidates: string[];
  /** More objects have the prefix than were looked at: there may be more candidates. */
  more: boolean;
}

const MAX_OBJECTS_EXAMINED = 20;
const MAX_CANDIDATES_LISTED = 5;
const MAX_SUBJECT = 50;

/**
 * The commits and annotated tags whose sha starts with `ref` (4 hex characters or more: git
 * reads shorter ones as names). git resolves a prefix that only one commit has, so two or more
 * here is why it did not.
 */
async function ambiguousCommits(git: SimpleGit, ref: string): Promise<Ambiguity> {
  if (!/^[0-9a-f]{4,63}$/i.test(ref)) return { candidates: [], more: false };
  const objects = (await git.raw(['rev-parse', `--disambiguate=${ref.toLowerCase()}`]).catch(() => ''))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^[0-9a-f]{40,64}$/.test(line));
  const candidates: string[] = [];
  for (const sha of objects.slice(0, MAX_OBJECTS_EXAMINED)) {
    const type = (await git.raw(['cat-file', '-t', sha]).catch(() => '')).trim();
    if (type === 'commit') {
      const [short, date, subject] = (await git.raw(['show', '--no-patch', '--format=%h%x00%cs%x00%s', sha]))
        .trim()
        .split('\0');
      const shown = subject.length > MAX_SUBJECT ? `${subject.slice(0, MAX_SUBJECT - 1)}…` : subject;
      candidates.push(`${short} (${date} ${shown})`);
    } else if (type === 'tag') {
      candidates.push(`${(await git.raw(['rev-parse', '--short', sha])).trim()} (annotated tag)`);
    }
  }
  return { candidates, more: objects.length > MAX_OBJECTS_EXAMINED };
}

function ambiguityError(repoRoot: string, ref: string, { candidates, more }: Ambiguity): UserError {
  const count = `${more ? 'at least ' : ''}${candidates.length}`;
  const listed = candidates.slice(0, MAX_CANDIDATES_LISTED).join(', ');
  const rest = candidates.length > MAX_CANDIDATES_LISTED || more ? ', …' : '';
  const example = candidates[0].split(' ')[0];
  return new UserError(
    `ref '${ref}' is an ambiguous short sha in ${repoRoot}, the start of ${count} commits (${listed}${rest}): give more characters of the sha you mean, e.g. --ref=${example}.`,
  );
}

const MAX_SUGGESTIONS = 3;

/**
 * Branches, remote branches and tags whose names are close to the ref's (a typo, a prefix, a
 * part of the name), best first. A suffix such as `~2` or `^` is kept on each suggestion; none
 * is made when the name before it is itself a commit, where the suffix is what went wrong.
 */
async function closeNames(git: SimpleGit, ref: string): Promise<string[]> {
  const [, base, suffix] = /^(.*?)((?:[~^]|@\{).*)?$/s.exec(ref) ?? [ref, ref, ''];
  if (base === '' || (suffix && (await commitOf(git, base)))) return [];
  const listing = await git
    .raw(['for-each-ref', '--format=%(refname)', 'refs/heads', 'refs/remotes', 'refs/tags'])
    .catch(() => '');
  const refs = listing.split('\n').filter((name) => name !== '' && !/^refs\/remotes\/[^/]+\/HEAD$/.test(name));
  const branches = new Set(refs.filter((name) => name.startsWith('refs/heads/')).map((name) => name.slice(11)));
  // A remote branch is named only where no local branch has its name (origin/main beside main).
  const names = new Set(
    refs
      .filter((name) => !name.startsWith('refs/remotes/') || !branches.has(name.replace(/^refs\/remotes\/[^/]+\//, '')))
      .map((name) => name.replace(/^refs\/(heads|tags|remotes)\//, '')),
  );
  const wanted = base.toLowerCase();
  const scored = [...names].flatMap((name) => {
    const score = closeness(wanted, name);
    return score === undefined ? [] : [{ name, score }];
  });
  return scored
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
    .slice(0, MAX_SUGGESTIONS)
    .map(({ name }) => `${name}${suffix ?? ''}`);
}

/**
 * How close a ref name is to what was typed, lower is closer; undefined when not close. A remote
 * branch is also compared without its remote's name (`origin/main` as `main`).
 */
function closeness(wanted: string, name: string): number | undefined {
  const forms = [name.toLowerCase(), name.toLowerCase().replace(/^[^/]+\//, '')];
  let best: number | undefined;
  for (const form of forms) {
    const distance = editDistance(wanted, form);
    const typo = distance <= Math.max(1, Math.floor(wanted.length / 4));
    // Names that only share a start or a part rank after every typo.
    const related =
      (wanted.length >= 2 && form.startsWith(wanted)) ||
      (form.length >= 3 && wanted.startsWith(form)) ||
      (wanted.length >= 3 && form.includes(wanted));
    const score = typo ? distance : related ? 100 + distance : undefined;
    if (score !== undefined && (best === undefined || score < best)) best = score;
  }
  return best;
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
      }
    }
  }
  return rows[a.length][b.length];
}

function orList(items: string[]): string {
  return items.length === 1 ? items[0] : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
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
    const commit = isValidRef(entry) ? await commitOf(git, entry) : undefined;
    if (commit && !named.has(commit)) named.set(commit, entry);
  }
  return named;
}

/**
 * The git submodule that holds `path` (relative to the repository root) at `commit`, if any: a
 * checkout of the commit holds no files of it.
 */
export async function submoduleHolding(repoRoot: string, commit: string, path: string): Promise<string | undefined> {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  const prefixes = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  if (prefixes.length === 0) return undefined;
  const listing = await simpleGit(repoRoot)
    .raw(['ls-tree', '--end-of-options', commit, '--', ...prefixes])
    .catch(() => '');
  const gitlink = listing.split('\n').find((line) => line.startsWith('160000 '));
  return gitlink?.split('\t')[1];
}

/**
 * Whether the repository still holds `commit` (gc removes an unreachable one in the end). Any
 * other failure of git (no repository, no git) is thrown: it says nothing about the commit.
 */
export async function commitExists(repoRoot: string, commit: string): Promise<boolean> {
  return simpleGit(repoRoot)
    .raw(['cat-file', '-e', `${commit}^{commit}`])
    .then(
      () => true,
      (error: Error) => {
        if (/Not a valid object name/.test(error.message)) return false;
        throw error;
      },
    );
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
