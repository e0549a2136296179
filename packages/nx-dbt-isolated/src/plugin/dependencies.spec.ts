import { dirname } from 'node:path';
import { DependencyType, type CreateDependenciesContext, type FileData, type ProjectConfiguration } from '@nx/devkit';
import { makeTempDir, removeDir, writeFiles } from '../core/testing/git-repo';
import { createDependencies, projectOwning } from './dependencies';

/** A workspace on disk and the context Nx would give createDependencies for it. */
function workspace(roots: Record<string, string>, files: Record<string, string>, changed?: string[]) {
  const workspaceRoot = makeTempDir();
  writeFiles(workspaceRoot, files);
  const projects: Record<string, ProjectConfiguration> = Object.fromEntries(
    Object.entries(roots).map(([name, root]) => [name, { root }]),
  );
  const projectFileMap: Record<string, FileData[]> = Object.fromEntries(
    Object.keys(projects).map((name) => [
      name,
      Object.keys(files)
        .filter((file) => projectOwning(projects, dirname(file)) === name)
        .map((file) => ({ file, hash: 'h' })),
    ]),
  );
  const toProcess = Object.fromEntries(
    Object.entries(projectFileMap).map(([name, owned]) => [
      name,
      owned.filter(({ file }) => changed === undefined || changed.includes(file)),
    ]),
  );
  const context = {
    workspaceRoot,
    projects,
    nxJsonConfiguration: {},
    externalNodes: {},
    fileMap: { projectFileMap, nonProjectFiles: [] },
    filesToProcess: { projectFileMap: toProcess, nonProjectFiles: [] },
  } as CreateDependenciesContext;
  return { context, cleanup: () => removeDir(workspaceRoot) };
}

const edges = async (context: CreateDependenciesContext) =>
  (await createDependencies(undefined, context)).map((edge) => ({
    source: edge.source,
    target: edge.target,
    sourceFile: 'sourceFile' in edge ? edge.sourceFile : undefined,
  }));

describe('createDependencies', () => {
  const roots = { shared: 'dbt/shared', analytics: 'dbt/analytics', finance: 'dbt/finance', web: 'apps/web' };
  const files = {
    'dbt/shared/dbt_project.yml': 'name: shared_pkg\n',
    'dbt/analytics/dbt_project.yml': 'name: analytics\nprofile: a\n',
    'dbt/analytics/packages.yml':
      'packages:\n  - local: ../shared\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n',
    'dbt/finance/dbt_project.yml': 'name: finance_dbt\nprofile: f\n',
    'dbt/finance/dependencies.yml':
      'packages:\n  - local: ../shared/\nprojects:\n  - name: analytics\n  - name: elsewhere\n',
    'apps/web/package.json': '{}',
  };
  let cleanup = () => undefined as void;
  afterEach(() => cleanup());

  it('adds a static edge per local package and dbt Mesh project, naming the file it comes from', async () => {
    const made = workspace(roots, files);
    cleanup = made.cleanup;
    await expect(edges(made.context)).resolves.toEqual([
      { source: 'analytics', target: 'shared', sourceFile: 'dbt/analytics/packages.yml' },
      { source: 'finance', target: 'shared', sourceFile: 'dbt/finance/dependencies.yml' },
      { source: 'finance', target: 'analytics', sourceFile: 'dbt/finance/dependencies.yml' },
    ]);
    const [first] = await createDependencies(undefined, made.context);
    expect(first.type).toBe(DependencyType.static);
  });

  it('matches dbt Mesh projects by their dbt name, not their Nx name', async () => {
    const made = workspace(roots, {
      ...files,
      'dbt/analytics/dependencies.yml': 'projects:\n  - name: finance_dbt\n  - name: finance\n',
    });
    cleanup = made.cleanup;
    const fromAnalytics = (await edges(made.context)).filter(
      ({ sourceFile }) => sourceFile === 'dbt/analytics/dependencies.yml',
    );
    expect(fromAnalytics).toEqual([
      { source: 'analytics', target: 'finance', sourceFile: 'dbt/analytics/dependencies.yml' },
    ]);
  });

  it('reads only the files Nx asks for: the others keep their cached edges', async () => {
    const made = workspace(roots, files, ['dbt/finance/dependencies.yml']);
    cleanup = made.cleanup;
    expect((await edges(made.context)).map(({ sourceFile }) => sourceFile)).toEqual([
      'dbt/finance/dependencies.yml',
      'dbt/finance/dependencies.yml',
    ]);
  });

  describe("a package's own local packages, which dbt resolves from the project that installs it", () => {
    const nested = { analytics: 'dbt/analytics', pkg_a: 'dbt/vendor/pkg_a', dbt_utils: 'dbt/vendor/dbt_utils' };
    const nestedFiles = {
      'dbt/analytics/dbt_project.yml': 'name: analytics\nprofile: a\n',
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../vendor/pkg_a\n',
      'dbt/vendor/pkg_a/dbt_project.yml': 'name: pkg_a\n',
      'dbt/vendor/pkg_a/packages.yml': 'packages:\n  - local: ../vendor/dbt_utils\n',
      'dbt/vendor/dbt_utils/dbt_project.yml': 'name: dbt_utils\n',
    };

    it('draws the package’s edge, and one from the installing project to each package its build installs', async () => {
      const made = workspace(nested, nestedFiles);
      cleanup = made.cleanup;
      await expect(edges(made.context)).resolves.toEqual([
        { source: 'analytics', target: 'pkg_a', sourceFile: 'dbt/analytics/packages.yml' },
        { source: 'analytics', target: 'dbt_utils', sourceFile: 'dbt/analytics/packages.yml' },
        { source: 'pkg_a', target: 'dbt_utils', sourceFile: 'dbt/vendor/pkg_a/packages.yml' },
      ]);
    });

    it('resolves a changed package file from the projects installing it, read again from disk', async () => {
      const made = workspace(nested, nestedFiles, ['dbt/vendor/pkg_a/packages.yml']);
      cleanup = made.cleanup;
      await expect(edges(made.context)).resolves.toEqual([
        { source: 'pkg_a', target: 'dbt_utils', sourceFile: 'dbt/vendor/pkg_a/packages.yml' },
      ]);
    });
  });

  it('skips local paths that reach no project, lead out of the workspace or back to the project itself, and broken files', async () => {
    const made = workspace(roots, {
      ...files,
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../../../outside\n  - local: ../../docs\n  - local: .\n',
      'dbt/finance/dependencies.yml': 'packages: [\n',
    });
    cleanup = made.cleanup;
    await expect(edges(made.context)).resolves.toEqual([]);
  });

  it('finds the project owning a folder inside it, preferring the deepest root', () => {
    const projects = { all: { root: '.' }, dbt: { root: 'dbt' }, shared: { root: 'dbt/shared' } };
    expect(projectOwning(projects, 'dbt/shared/macros')).toBe('shared');
    expect(projectOwning(projects, 'dbt/sharedx')).toBe('dbt');
    expect(projectOwning(projects, 'docs')).toBe('all');
    expect(projectOwning(projects, '../elsewhere')).toBeUndefined();
  });
});
