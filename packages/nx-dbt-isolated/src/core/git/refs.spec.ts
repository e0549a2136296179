import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../workspace/errors';
import { commitExists, commitsNamedBy, editDistance, repositoryRoot, resolveCommit, submoduleHolding } from './refs';
import { makeTempDir, makeTempRepo, removeDir, type TempRepo } from '../testing/git-repo';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('resolveCommit', () => {
  let repo: TempRepo;
  let first: string;
  let second: string;
  let onFeature: string;

  beforeAll(() => {
    repo = makeTempRepo();
    first = repo.commit('first', { 'models/a.sql': 'select 1' });
    repo.git('tag', 'v1');
    repo.git('tag', '--annotate', 'v1-annotated', '--message', 'release');
    second = repo.commit('second', { 'models/a.sql': 'select 2' });
    repo.git('switch', '--quiet', '--create', 'feature', first);
    onFeature = repo.commit('on feature', { 'models/b.sql': 'select 3' });
    repo.git('switch', '--quiet', 'main');
  });
  afterAll(() => repo.cleanup());

  it('gives three different commits to work with', () => {
    expect(new Set([first, second, onFeature]).size).toBe(3);
    expect(first).toMatch(/^[0-9a-f]{40}$/);
  });

  it('resolves a branch to the commit at its tip', async () => {
    await expect(resolveCommit(repo.root, 'main')).resolves.toBe(second);
    await expect(resolveCommit(repo.root, 'feature')).resolves.toBe(onFeature);
  });

  it('resolves a lightweight and an annotated tag to the tagged commit', async () => {
    await expect(resolveCommit(repo.root, 'v1')).resolves.toBe(first);
    await expect(resolveCommit(repo.root, 'v1-annotated')).resolves.toBe(first);
  });

  it('resolves a full and a short sha', async () => {
    await expect(resolveCommit(repo.root, first)).resolves.toBe(first);
    await expect(resolveCommit(repo.root, first.slice(0, 8))).resolves.toBe(first);
  });

  it('refuses a name that is both a tag and a branch at different commits, naming both full refs', async () => {
    repo.git('tag', 'release', first);
    repo.git('branch', 'release', second);
    repo.git('tag', 'same', second);
    repo.git('branch', 'same', second);
    try {
      const error = await rejection(resolveCommit(repo.root, 'release'));
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toBe(
        `ref 'release' is both a tag (${first.slice(0, 12)}) and a branch (${second.slice(0, 12)}): say which with --ref=refs/tags/release or --ref=refs/heads/release.`,
      );
      await expect(resolveCommit(repo.root, 'refs/tags/release')).resolves.toBe(first);
      await expect(resolveCommit(repo.root, 'refs/heads/release')).resolves.toBe(second);
      await expect(resolveCommit(repo.root, 'same')).resolves.toBe(second);
    } finally {
      repo.git('tag', '--delete', 'release', 'same');
      repo.git('branch', '--delete', '--force', 'release', 'same');
    }
  });

  it('resolves relative refs', async () => {
    await expect(resolveCommit(repo.root, 'HEAD')).resolves.toBe(second);
    await expect(resolveCommit(repo.root, 'HEAD~1')).resolves.toBe(first);
    await expect(resolveCommit(repo.root, 'feature^')).resolves.toBe(first);
  });

  it('refuses a ref that git would read as an option, without running it', async () => {
    const marker = join(repo.root, 'uploaded');
    const ref = `--upload-pack=touch ${marker}`;
    const error = await rejection(resolveCommit(repo.root, ref));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`'${ref}'`);
    expect(existsSync(marker)).toBe(false);
  });

  it.each(['-b', '--all'])('refuses the option-like ref %s', async (ref) => {
    const error = await rejection(resolveCommit(repo.root, ref));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`'${ref}'`);
  });

  it.each(['', '   ', 'main\nHEAD'])('refuses the empty or multi-line ref %j', async (ref) => {
    const error = await rejection(resolveCommit(repo.root, ref));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(`ref '${ref}'`);
  });

  it('refuses an unknown ref, naming it and the repository', async () => {
    const error = await rejection(resolveCommit(repo.root, 'no-such-branch'));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain("'no-such-branch'");
    expect(error.message).toContain(repo.root);
  });

  it('refuses a ref naming an object that is not a commit', async () => {
    const tree = repo.git('rev-parse', 'HEAD^{tree}');
    const error = await rejection(resolveCommit(repo.root, tree));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(tree);
  });
});

/**
 * Writes `count` commits of `repo` whose shas share their first `length` hex characters (found by
 * hashing candidate commit objects here, then stored with git hash-object) and returns them.
 */
function commitsSharingAPrefix(repo: TempRepo, length: number, count = 2, subject = 'attempt'): string[] {
  const tree = repo.git('rev-parse', 'HEAD^{tree}');
  const parent = repo.git('rev-parse', 'HEAD');
  const body = (n: number) =>
    `tree ${tree}\nparent ${parent}\nauthor Test User <test@example.com> 1700000000 +0000\n` +
    `committer Test User <test@example.com> 1700000000 +0000\n\n${subject} ${n}\n`;
  const byPrefix = new Map<string, number[]>();
  for (let n = 0; ; n++) {
    const text = body(n);
    const sha = createHash('sha1')
      .update(`commit ${Buffer.byteLength(text)}\0${text}`)
      .digest('hex');
    const sharing = [...(byPrefix.get(sha.slice(0, length)) ?? []), n];
    if (sharing.length === count) {
      return sharing.map((m) =>
        execFileSync('git', ['hash-object', '-t', 'commit', '-w', '--stdin'], {
          cwd: repo.root,
          input: body(m),
          encoding: 'utf8',
        }).trim(),
      );
    }
    byPrefix.set(sha.slice(0, length), sharing);
  }
}

describe('resolveCommit: what a ref that names no commit is told', () => {
  let repo: TempRepo;
  let first: string;

  beforeAll(() => {
    repo = makeTempRepo();
    first = repo.commit('first', { 'models/a.sql': 'select 1' });
    repo.git('tag', 'v1.0');
    repo.commit('second', { 'models/a.sql': 'select 2' });
    repo.git('branch', 'feature/vip');
    repo.git('branch', 'develop');
    repo.git('update-ref', 'refs/remotes/origin/release', first);
    repo.git('symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/release');
  });
  afterAll(() => repo.cleanup());

  it.each([
    ['mian', 'main'],
    ['Main', 'main'],
    ['feture/vip', 'feature/vip'],
    ['vip', 'feature/vip'],
    ['v1.O', 'v1.0'],
    ['relase', 'origin/release'],
    ['mian~1', 'main~1'],
    ['devlop^', 'develop^'],
  ])('suggests close names for %s', async (ref, suggestion) => {
    const error = await rejection(resolveCommit(repo.root, ref));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `ref '${ref}' does not name a commit in ${repo.root} (did you mean ${suggestion}?): check the spelling, or fetch it first (git fetch).`,
    );
  });

  it('suggests at most three names, closest first', async () => {
    for (const name of ['fix-1', 'fix-2', 'fix-3', 'fix-4']) repo.git('branch', name);
    try {
      const error = await rejection(resolveCommit(repo.root, 'fix-0'));
      expect(error.message).toContain('(did you mean fix-1, fix-2 or fix-3?)');
    } finally {
      for (const name of ['fix-1', 'fix-2', 'fix-3', 'fix-4']) repo.git('branch', '-D', name);
    }
  });

  it('suggests nothing for a name close to none, nor where only the suffix is wrong', async () => {
    for (const ref of ['completely-unrelated', 'main~40']) {
      const error = await rejection(resolveCommit(repo.root, ref));
      expect(error.message).toBe(
        `ref '${ref}' does not name a commit in ${repo.root}: check the spelling, or fetch it first (git fetch).`,
      );
    }
  });

  it.each([
    ['a command after ;', (marker: string) => `main;touch ${marker}`],
    ['a command substitution', (marker: string) => `$(touch ${marker})`],
    ['a backquoted command', (marker: string) => `\`touch ${marker}\``],
    ['a pipe and a redirection', (marker: string) => `main|tee ${marker}>${marker}`],
  ])('passes a ref holding %s to git as one argument, running nothing', async (_what, makeRef) => {
    const marker = join(repo.root, 'pwned');
    const ref = makeRef(marker);
    const error = await rejection(resolveCommit(repo.root, ref));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(new RegExp(`^ref '.*' does not name a commit in ${repo.root}`));
    expect(error.message).toContain(ref);
    expect(existsSync(marker)).toBe(false);
    expect(repo.git('status', '--porcelain', '--untracked-files=all')).toBe('');
  });

  it('lists the commits an ambiguous short sha could mean and asks for more characters', async () => {
    const [one, two] = commitsSharingAPrefix(repo, 5);
    const prefix = one.slice(0, 5);
    expect(two.slice(0, 5)).toBe(prefix);
    const error = await rejection(resolveCommit(repo.root, prefix));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(
      new RegExp(`^ref '${prefix}' is an ambiguous short sha in ${repo.root}, the start of 2 commits \\(`),
    );
    const abbreviated = [one, two].map((sha) => repo.git('rev-parse', '--short', sha));
    for (const short of abbreviated) expect(error.message).toContain(`${short} (2023-11-14 attempt `);
    expect(error.message).toMatch(/: give more characters of the sha you mean, e\.g\. --ref=[0-9a-f]{7,}\.$/);
    // Either commit, given in full or by its longer abbreviation, still resolves.
    await expect(resolveCommit(repo.root, one)).resolves.toBe(one);
    await expect(resolveCommit(repo.root, abbreviated[1])).resolves.toBe(two);
    await expect(resolveCommit(repo.root, prefix.toUpperCase())).rejects.toThrow('is an ambiguous short sha');
  });

  it('lists five of many candidates, with their subjects cut short', async () => {
    const subject = 'A commit message far longer than anyone would want to read in one line';
    const shas = commitsSharingAPrefix(repo, 4, 6, subject);
    const prefix = shas[0].slice(0, 4);
    const error = await rejection(resolveCommit(repo.root, prefix));
    const listed = /the start of (\d+) commits \((.*)\): give more/.exec(error.message);
    expect(Number(listed?.[1])).toBeGreaterThanOrEqual(6);
    const candidates = listed![2].split(/, (?=[0-9a-f]{7,} \(|…)/);
    expect(candidates).toHaveLength(6);
    expect(candidates[5]).toBe('…');
    for (const candidate of candidates.slice(0, 5)) {
      expect(candidate).toMatch(/^[0-9a-f]{7,} \(\d{4}-\d\d-\d\d .{49}…\)$/);
    }
  });

  it('says an empty repository has no commits and to commit first', async () => {
    const empty = makeTempRepo();
    try {
      for (const ref of ['HEAD', 'main']) {
        const error = await rejection(resolveCommit(empty.root, ref));
        expect(error).toBeInstanceOf(UserError);
        expect(error.message).toBe(
          `the repository at ${empty.root} has no commits yet, so ref '${ref}' names nothing to build: commit the dbt project first (git add, then git commit), then build a ref of it.`,
        );
      }
    } finally {
      empty.cleanup();
    }
  });

  it('says how to deepen a shallow clone that lacks the commit', async () => {
    const clones = makeTempDir();
    const clone = join(clones, 'shallow');
    try {
      execFileSync('git', ['clone', '--quiet', '--depth=1', `file://${repo.root}`, clone], { stdio: 'ignore' });
      await expect(resolveCommit(clone, 'HEAD')).resolves.toBe(repo.git('rev-parse', 'main'));
      for (const ref of [first, 'v1.0', 'HEAD~1']) {
        const error = await rejection(resolveCommit(clone, ref));
        expect(error).toBeInstanceOf(UserError);
        expect(error.message).toMatch(
          new RegExp(`^ref '${ref.replace(/[.^~]/g, '\\$&')}' does not name a commit in ${clone}, a shallow clone`),
        );
        expect(error.message).toContain("'git fetch --deepen=<commits>' or 'git fetch --unshallow'");
        expect(error.message).toContain('fetch-depth: 0 on actions/checkout');
        expect(error.message.split('\n')).toHaveLength(1);
      }
      // A typo in a shallow clone still gets its suggestion.
      expect((await rejection(resolveCommit(clone, 'mian'))).message).toContain('(did you mean main?)');
    } finally {
      removeDir(clones);
    }
  });

  it('keeps every message to one line', async () => {
    for (const ref of ['mian', 'no-such-branch', '$(touch x)', 'main;touch x']) {
      const error = await rejection(resolveCommit(repo.root, ref));
      expect(error.message.split('\n')).toHaveLength(1);
      expect(error.message).toMatch(/: .+\.$/);
    }
  });
});

describe('commitsNamedBy', () => {
  let repo: TempRepo;
  beforeAll(() => {
    repo = makeTempRepo();
    repo.commit('first', { 'models/a.sql': 'select 1' });
  });
  afterAll(() => repo.cleanup());

  it('skips entries that name nothing, and option-like ones, without asking git', async () => {
    const head = repo.git('rev-parse', 'HEAD');
    const named = await commitsNamedBy(repo.root, ['main', 'master', '--all', 'mian']);
    expect([...named.entries()]).toEqual([[head, 'main']]);
  });
});

describe('commitExists', () => {
  let repo: TempRepo;
  beforeAll(() => {
    repo = makeTempRepo();
    repo.commit('first', { 'models/a.sql': 'select 1' });
  });
  afterAll(() => repo.cleanup());

  it('tells a commit the repository holds from one it does not, and throws when git cannot say', async () => {
    await expect(commitExists(repo.root, repo.git('rev-parse', 'HEAD'))).resolves.toBe(true);
    await expect(commitExists(repo.root, 'd'.repeat(40))).resolves.toBe(false);
    const outside = makeTempDir();
    try {
      await expect(commitExists(outside, 'd'.repeat(40))).rejects.toThrow();
    } finally {
      removeDir(outside);
    }
  });
});

describe('editDistance', () => {
  it.each([
    ['main', 'main', 0],
    ['mian', 'main', 1],
    ['man', 'main', 1],
    ['mainn', 'main', 1],
    ['master', 'main', 4],
    ['', 'abc', 3],
  ])('%s → %s is %d', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
  });
});

describe('repositoryRoot', () => {
  let repo: TempRepo;
  beforeAll(() => {
    repo = makeTempRepo();
    repo.commit('first', { 'analytics/dbt_project.yml': 'name: analytics\n' });
  });
  afterAll(() => repo.cleanup());

  it('finds the top of the repository from the root and from a subfolder', async () => {
    await expect(repositoryRoot(repo.root)).resolves.toBe(repo.root);
    await expect(repositoryRoot(join(repo.root, 'analytics'))).resolves.toBe(repo.root);
  });

  it('throws a UserError naming a folder outside any repository', async () => {
    const outside = makeTempDir();
    try {
      mkdirSync(join(outside, 'project'));
      const folder = join(outside, 'project');
      const error = await rejection(repositoryRoot(folder));
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toContain(folder);
      expect(error.message).toContain('git init');
    } finally {
      removeDir(outside);
    }
  });
});

describe('submoduleHolding', () => {
  it("names the submodule a path lies in at a commit, and nothing for the repository's own folders", async () => {
    const repo = makeTempRepo();
    try {
      const own = repo.commit('own project', { 'analytics/dbt_project.yml': 'name: analytics\n' });
      repo.git('update-index', '--add', '--cacheinfo', `160000,${own},vendor/warehouse`);
      repo.git('commit', '--quiet', '-m', 'add a submodule');
      const withSubmodule = repo.git('rev-parse', 'HEAD').trim();
      await expect(submoduleHolding(repo.root, withSubmodule, 'vendor/warehouse/analytics')).resolves.toBe(
        'vendor/warehouse',
      );
      await expect(submoduleHolding(repo.root, withSubmodule, 'vendor/warehouse')).resolves.toBe('vendor/warehouse');
      await expect(submoduleHolding(repo.root, withSubmodule, 'analytics')).resolves.toBeUndefined();
      await expect(submoduleHolding(repo.root, own, 'vendor/warehouse/analytics')).resolves.toBeUndefined();
    } finally {
      repo.cleanup();
    }
  });
});
