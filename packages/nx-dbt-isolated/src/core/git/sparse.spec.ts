import { conePatterns, checkoutScope, foldersForProject, foldersInPatterns, outermost } from './sparse';
import { makeTempRepo, type TempRepo } from '../testing/git-repo';

/** A commit's files as a reader, the way checkoutScope reads them with git. */
const filesAt = (files: Record<string, string>) => async (path: string) => files[path];

describe('foldersForProject', () => {
  it('is the project alone when it names nothing outside itself', async () => {
    const read = filesAt({ 'dbt/analytics/dbt_project.yml': 'name: analytics\nmodel-paths: [models]\n' });
    await expect(foldersForProject(read, 'dbt/analytics')).resolves.toEqual({ folders: ['dbt/analytics'] });
  });

  it('adds local packages, theirs in turn, and the folders a dbt_project.yml names outside its project', async () => {
    const read = filesAt({
      'dbt/analytics/dbt_project.yml': 'name: analytics\nmacro-paths: [macros, ../../shared/macros]\n',
      'dbt/analytics/packages.yml':
        'packages:\n  - local: ../shared_pkg\n  - package: dbt-labs/dbt_utils\n    version: 1.0.0\n',
      'dbt/shared_pkg/dbt_project.yml': 'name: shared_pkg\nseed-paths: ["../../data/seeds"]\n',
      'dbt/shared_pkg/dependencies.yml': 'packages:\n  - local: ../../libs/base/\nprojects:\n  - name: core\n',
      'libs/base/dbt_project.yml': 'name: base\n',
    });
    await expect(foldersForProject(read, 'dbt/analytics')).resolves.toEqual({
      folders: ['data/seeds', 'dbt/analytics', 'dbt/shared_pkg', 'libs/base', 'shared/macros'],
    });
  });

  it("resolves a package's own local packages from the root project, as dbt deps does", async () => {
    const read = filesAt({
      'dbt/analytics/dbt_project.yml': 'name: analytics\n',
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../vendor/pkg_a\n',
      'dbt/vendor/pkg_a/dbt_project.yml': 'name: pkg_a\nmacro-paths: [macros]\n',
      'dbt/vendor/pkg_a/packages.yml': 'packages:\n  - local: ../vendor/dbt_utils\n',
      'dbt/vendor/dbt_utils/dbt_project.yml': 'name: dbt_utils\n',
    });
    await expect(foldersForProject(read, 'dbt/analytics')).resolves.toEqual({
      folders: ['dbt/analytics', 'dbt/vendor/dbt_utils', 'dbt/vendor/pkg_a'],
    });
  });

  it('ignores folders outside the repository and absolute ones: dbt reads those from disk', async () => {
    const read = filesAt({
      'analytics/dbt_project.yml': 'name: analytics\nmodel-paths: ["../../elsewhere", "/opt/models"]\n',
      'analytics/packages.yml': 'packages:\n  - local: /srv/pkg\n',
    });
    await expect(foldersForProject(read, 'analytics')).resolves.toEqual({ folders: ['analytics'] });
  });

  it('follows a package cycle once', async () => {
    const read = filesAt({
      'a/dbt_project.yml': 'name: a\n',
      'a/packages.yml': 'packages:\n  - local: ../b\n',
      'b/dbt_project.yml': 'name: b\n',
      'b/packages.yml': 'packages:\n  - local: ../a\n',
    });
    await expect(foldersForProject(read, 'a')).resolves.toEqual({ folders: ['a', 'b'] });
  });

  it('keeps only outer folders when one holds another', async () => {
    const read = filesAt({ 'dbt/a/dbt_project.yml': 'name: a\n', 'dbt/a/packages.yml': 'packages:\n  - local: ..\n' });
    await expect(foldersForProject(read, 'dbt/a')).resolves.toEqual({ folders: ['dbt'] });
  });

  it('adds the extra folders asked for, those inside the repository', async () => {
    const read = filesAt({ 'analytics/dbt_project.yml': 'name: analytics\n' });
    await expect(foldersForProject(read, 'analytics', ['data/raw/', '../outside', '/abs'])).resolves.toEqual({
      folders: ['analytics', 'data/raw'],
    });
  });

  it.each([
    [
      'a Jinja path in dbt_project.yml',
      { 'analytics/dbt_project.yml': 'name: a\nmodel-paths: ["{{ env_var(\'M\') }}"]\n' },
    ],
    [
      'a Jinja local package',
      {
        'analytics/dbt_project.yml': 'name: a\n',
        'analytics/packages.yml': 'packages:\n  - local: "{{ env_var(\'PKG\') }}"\n',
      },
    ],
  ])('checks out every file, saying why, for %s', async (_, files) => {
    const scope = await foldersForProject(filesAt(files), 'analytics');
    expect(scope.folders).toBe('all');
    expect(scope.fullBecause).toMatch(/^analytics\/(dbt_project|packages)\.yml .* with Jinja, so only dbt knows/);
  });

  it('checks out every file for a project at the repository root', async () => {
    const scope = await foldersForProject(filesAt({ 'dbt_project.yml': 'name: a\n' }), '');
    expect(scope).toEqual({ folders: 'all', fullBecause: 'the build reads the repository root folder' });
  });

  it('leaves a broken YAML file to dbt, which reports it when it parses', async () => {
    const read = filesAt({ 'analytics/dbt_project.yml': 'name: [\n', 'analytics/packages.yml': ': : :\n' });
    await expect(foldersForProject(read, 'analytics')).resolves.toEqual({ folders: ['analytics'] });
  });
});

describe('checkoutScope', () => {
  let repo: TempRepo;
  afterEach(() => repo.cleanup());

  it('reads the files as they were at the commit, not as they are now', async () => {
    repo = makeTempRepo();
    const first = repo.commit('first', {
      'dbt/analytics/dbt_project.yml': 'name: analytics\nprofile: p\n',
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../old_pkg\n',
    });
    repo.commit('second', { 'dbt/analytics/packages.yml': 'packages:\n  - local: ../new_pkg\n' });
    await expect(checkoutScope(repo.root, first, 'dbt/analytics')).resolves.toEqual({
      folders: ['dbt/analytics', 'dbt/old_pkg'],
    });
  });
});

describe('cone patterns', () => {
  it("writes git's cone-mode patterns: root files, parents' own files, each folder in full", () => {
    expect(conePatterns(['dbt/analytics', 'dbt/shared', 'libs'])).toBe(
      ['/*', '!/*/', '/dbt/', '!/dbt/*/', '/dbt/analytics/', '/dbt/shared/', '/libs/', ''].join('\n'),
    );
  });

  it('reads back the folders it wrote, special characters included', () => {
    const folders = ['a/b/c', 'a/d', 'odd [x]*?', 'z'];
    expect(foldersInPatterns(conePatterns(folders))).toEqual(folders);
  });

  it('reads no folder from the full pattern', () => {
    expect(foldersInPatterns('/*\n')).toEqual([]);
  });

  it('keeps only the outermost folders', () => {
    expect(outermost(['a/b', 'a', 'ab', 'c/d', 'c/d'])).toEqual(['a', 'ab', 'c/d']);
  });
});
