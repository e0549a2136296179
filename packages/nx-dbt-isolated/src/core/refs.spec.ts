import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors';
import { repositoryRoot, resolveCommit } from './refs';
import { makeTempDir, makeTempRepo, removeDir, type TempRepo } from './testing/git-repo';

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
