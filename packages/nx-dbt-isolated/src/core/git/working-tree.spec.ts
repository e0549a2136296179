import { readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempRepo, writeFiles, type TempRepo } from '../testing/git-repo';
import { uncommittedFiles } from './working-tree';

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

  it('is empty for a clean tree, and leaves the index file as it was', async () => {
    const index = join(repo.root, '.git', 'index');
    const before = { text: readFileSync(index), mtime: statSync(index).mtimeMs };
    expect(await uncommittedFiles(repo.root, ['dbt/analytics'])).toEqual([]);
    expect({ text: readFileSync(index), mtime: statSync(index).mtimeMs }).toEqual(before);
  });
});
