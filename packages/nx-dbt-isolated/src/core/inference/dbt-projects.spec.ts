import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import {
  inferDbtProjects,
  localPackageInstalls,
  projectRootOf,
  userDbtProjectFiles,
  type FoundDbtProject,
} from './dbt-projects';

/** A workspace's files as the reader inference takes. */
const filesAt = (files: Record<string, string>) => (path: string) => files[path];

describe('userDbtProjectFiles', () => {
  let workspaceRoot: string;
  beforeEach(() => {
    workspaceRoot = makeTempDir();
  });
  afterEach(() => removeDir(workspaceRoot));

  it("skips dbt's output folders inside a project but keeps a project that lives in a folder named logs", () => {
    expect(
      userDbtProjectFiles(
        [
          'analytics/dbt_project.yml',
          'analytics/target/copy/dbt_project.yml',
          'analytics/dbt_packages/shared/dbt_project.yml',
          'analytics/logs/x/dbt_project.yml',
          'logs/audit/dbt_project.yml',
          'platform/target/dbt_project.yml',
          '.dot/abcd1234/worktree/analytics/dbt_project.yml',
          'node_modules/pkg/dbt_project.yml',
        ],
        workspaceRoot,
      ),
    ).toEqual(['analytics/dbt_project.yml', 'logs/audit/dbt_project.yml', 'platform/target/dbt_project.yml']);
  });

  it("skips the projects Python environments bundle (dbt's own), whatever the environment's folder is called", () => {
    writeFiles(workspaceRoot, { '.venv/pyvenv.cfg': 'home = /usr/bin\n', 'tools/env/conda-meta/history': '' });
    const bundled = 'lib/python3.11/site-packages/dbt/include/starter_project/dbt_project.yml';
    expect(
      userDbtProjectFiles(
        [
          `.venv/${bundled}`,
          `tools/env/${bundled}`,
          `other-env/${bundled}`,
          'dist/usr/lib/python3/dist-packages/dbt/adapters/duckdb/include/dbt_project.yml',
          'venv_notes/dbt_project.yml',
          'analytics/dbt_project.yml',
        ],
        workspaceRoot,
      ),
    ).toEqual(['venv_notes/dbt_project.yml', 'analytics/dbt_project.yml']);
  });
});

describe('inferDbtProjects', () => {
  const project = (root: string, name: string, profile?: string): FoundDbtProject => ({
    root,
    name,
    ...(profile !== undefined && { profile }),
  });

  it('keeps the dbt name unique: the project nearest the root keeps it, the others are named by folder', async () => {
    const found = [
      project('vendor/dbt_utils/integration_tests', 'integration_tests', 'integration_tests'),
      project('analytics', 'analytics', 'warehouse'),
      project('vendor/dbt_date/integration_tests', 'integration_tests', 'integration_tests'),
      project('old/analytics', 'analytics', 'warehouse'),
      project('x', 'vendor-dbt_utils-integration_tests', 'p'),
    ];
    const inferred = await inferDbtProjects(found, filesAt({}));
    const names = Object.fromEntries([...inferred].map(([root, { nxName }]) => [root, nxName]));
    expect(names).toEqual({
      analytics: 'analytics',
      'old/analytics': 'old-analytics',
      'vendor/dbt_date/integration_tests': 'integration_tests',
      // Its folder's name is taken by another project's dbt name.
      'vendor/dbt_utils/integration_tests': 'vendor-dbt_utils-integration_tests-2',
      x: 'vendor-dbt_utils-integration_tests',
    });
  });

  it('gives no build targets to packages others install, nor to projects inside their folders, unless asked', async () => {
    const files = {
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../vendor/pkg_a\n',
      // dbt resolves a package's local paths from the root project: this is dbt/vendor/dbt_utils.
      'dbt/vendor/pkg_a/packages.yml': 'packages:\n  - local: ../vendor/dbt_utils\n',
      'dbt/vendor/dbt_utils/integration_tests/packages.yml': 'packages:\n  - local: ../\n',
      'dbt/core/dependencies.yml': 'projects:\n  - name: analytics\n',
    };
    const found = [
      project('dbt/analytics', 'analytics', 'warehouse'),
      project('dbt/core', 'core', 'warehouse'),
      project('dbt/vendor/pkg_a', 'pkg_a', 'pkg_a'),
      project('dbt/vendor/dbt_utils', 'dbt_utils'),
      project('dbt/vendor/dbt_utils/integration_tests', 'integration_tests', 'integration_tests'),
    ];
    const notBuilt = async (options = {}) =>
      Object.fromEntries(
        [...(await inferDbtProjects(found, filesAt(files), options))].map(([root, { notBuilt }]) => [root, notBuilt]),
      );
    expect(await notBuilt()).toEqual({
      'dbt/analytics': undefined,
      // A dbt Mesh project is built on its own: `projects:` is not a package.
      'dbt/core': undefined,
      'dbt/vendor/pkg_a': expect.stringMatching(
        /^dbt\/analytics installs it as a local package \(list it in the plugin's buildablePackages/,
      ),
      'dbt/vendor/dbt_utils': expect.stringContaining('it has no profile'),
      'dbt/vendor/dbt_utils/integration_tests': expect.stringContaining('inside the package at dbt/vendor/dbt_utils'),
    });
    const asked = await notBuilt({ buildablePackages: ['dbt/vendor/pkg_a/', 'dbt/vendor/*/integration_tests'] });
    expect(asked['dbt/vendor/pkg_a']).toBeUndefined();
    expect(asked['dbt/vendor/dbt_utils/integration_tests']).toBeUndefined();
    expect(asked['dbt/vendor/dbt_utils']).toContain('it has no profile');
  });

  it('keeps the integration_tests of a workspace that is itself a dbt package buildable', async () => {
    const files = { 'integration_tests/packages.yml': 'packages:\n  - local: ../\n' };
    const inferred = await inferDbtProjects(
      [project('', 'my_package'), project('integration_tests', 'integration_tests', 'integration_tests')],
      filesAt(files),
    );
    expect(inferred.get('integration_tests')).toEqual({ nxName: 'integration_tests' });
    expect(inferred.get('')?.notBuilt).toContain('no profile');
  });
});

describe('localPackageInstalls', () => {
  it('lists what each project with a profile installs, packages of packages resolved from it as dbt does', async () => {
    const files = {
      'dbt/analytics/packages.yml': 'packages:\n  - local: ../vendor/pkg_a\n',
      'dbt/vendor/pkg_a/packages.yml': 'packages:\n  - local: ../vendor/dbt_utils\n  - local: /abs/pkg\n',
      'dbt/vendor/pkg_a/dependencies.yml': 'packages:\n  - local: ../../../outside\n',
    };
    const found = [project('dbt/analytics', 'analytics', 'p'), project('dbt/vendor/pkg_a', 'pkg_a')];
    expect(await localPackageInstalls(found, filesAt(files))).toEqual(
      new Map([['dbt/analytics', ['dbt/vendor/pkg_a', 'dbt/vendor/dbt_utils']]]),
    );
  });

  function project(root: string, name: string, profile?: string): FoundDbtProject {
    return { root, name, ...(profile !== undefined && { profile }) };
  }
});

describe('projectRootOf', () => {
  it("is the folder of a dbt_project.yml, '' at the workspace root", () => {
    expect(projectRootOf('dbt/analytics/dbt_project.yml')).toBe('dbt/analytics');
    expect(projectRootOf('dbt_project.yml')).toBe('');
  });
});
