import { readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempRepo, writeFiles, type TempRepo } from '../testing/git-repo';
import { uncommittedChangesWarning, uncommittedFiles } from './working-tree';

describe('uncommittedFiles', () => {
  let repo: TempRepo;
  beforeEach(() => {
    repo = makeTempRepo();
    repo.commit('initial', {
      '.gitignore': 'target/\n',
      'dbt/analytics/models/a.sql': 'select 1',
      'dbt/analytics/models/b.sql': 'select 2',
      'dbt/shared/macros/m.sql': '{% macro m() %}1{% endmacro %}',
      'docs/readme.md': 'docs',
    });
  });
  afterEach(() => repo.cleanup());

  it('lists edited, staged, renamed and new files under the folders, not ignored ones nor those elsewhere', async () => {
    writeFiles(repo.root, {
      'dbt/analytics/models/a.sql': 'select 10',
      'dbt/analytics/models/new.sql': 'select 3',
      'dbt/analytics/target/manifest.json': '{}',
      'dbt/shared/macros/m.sql': '{% macro m() %}2{% endmacro %}',
      'docs/readme.md': 'edited',
    });
    repo.git('add', 'dbt/shared/macros/m.sql');
    renameSync(join(repo.root, 'dbt/analytics/models/b.sql'), join(repo.root, 'dbt/analytics/models/c.sql'));
    repo.git('add', '-A', 'dbt/analytics/models/b.sql', 'dbt/analytics/models/c.sql');
    expect((await uncommittedFiles(repo.root, ['dbt/analytics', 'dbt/shared'])).sort()).toEqual([
      'dbt/analytics/models/a.sql',
      'dbt/analytics/models/c.sql',
      'dbt/analytics/models/new.sql',
      'dbt/shared/macros/m.sql',
    ]);
    expect(await uncommittedFiles(repo.root, 'all')).toContain('docs/readme.md');
  });

  it('counts a rename in the working tree (git add -N) once', async () => {
    renameSync(join(repo.root, 'dbt/analytics/models/a.sql'), join(repo.root, 'dbt/analytics/models/renamed.sql'));
    repo.git('add', '-N', 'dbt/analytics/models/renamed.sql');
    expect(await uncommittedFiles(repo.root, ['dbt/analytics'])).toEqual(['dbt/analytics/models/renamed.sql']);
  });

  it('is empty for a clean tree, and leaves the index file as it was', async () => {
    const index = join(repo.root, '.git', 'index');
    const before = { text: readFileSync(index), mtime: statSync(index).mtimeMs };
    expect(await uncommittedFiles(repo.root, ['dbt/analytics'])).toEqual([]);
    expect({ text: readFileSync(index), mtime: statSync(index).mtimeMs }).toEqual(before);
  });
});

describe('uncommittedChangesWarning', () => {
  let repo: TempRepo;
  let first: string;
  let second: string;
  beforeEach(() => {
    repo = makeTempRepo();
    first = repo.commit('first', {
      'dbt/analytics/dbt_project.yml': 'name: analytics\nprofile: warehouse\n',
      'dbt/analytics/profiles.yml': 'warehouse: {}\n',
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../vendor/pkg\n',
      'dbt/vendor/pkg/packages.yml': 'packages:\n  - local: ../vendor/utils\n',
      'dbt/vendor/utils/macros/u.sql': '1',
      'docs/notes.md': 'notes',
    });
    second = repo.commit('second', { 'dbt/analytics/models/a.sql': 'select 1' });
  });
  afterEach(() => repo.cleanup());

  const warning = (commit: string, ref = 'HEAD') =>
    uncommittedChangesWarning({
      workspaceRoot: repo.root,
      project: 'analytics',
      projectRoot: 'dbt/analytics',
      ref,
      commit,
    });

  it('names the changes to the project and its packages (theirs too) that a build of HEAD left out', async () => {
    writeFiles(repo.root, { 'dbt/analytics/models/a.sql': 'select 2', 'dbt/vendor/utils/macros/u.sql': '2' });
    await expect(warning(second)).resolves.toBe(
      `analytics: uncommitted changes to 2 files in dbt/analytics, dbt/vendor/pkg, dbt/vendor/utils are not in this build of HEAD (${second.slice(0, 8)}), which built the commit: commit them (or git stash them) to build them.`,
    );
  });

  it('says nothing for another commit, for changes elsewhere, or for the profiles.yml builds read from the working tree', async () => {
    writeFiles(repo.root, { 'docs/notes.md': 'edited', 'dbt/analytics/profiles.yml': 'warehouse: {edited: 1}\n' });
    await expect(warning(second)).resolves.toBeUndefined();
    writeFiles(repo.root, { 'dbt/analytics/models/a.sql': 'select 2' });
    await expect(warning(first, 'v1')).resolves.toBeUndefined();
  });
});
