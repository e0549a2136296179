import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { NX_VERSION, REPO_ROOT, VENV_BIN } from '../../fixture-workspace/paths';
import { runNx } from '../../fixture-workspace/workspace';

const TARBALL = join(
  REPO_ROOT,
  'dist',
  `nx-dbt-isolated-${JSON.parse(readFileSync(join(REPO_ROOT, 'packages/nx-dbt-isolated/package.json'), 'utf8')).version}.tgz`,
);

/** A PATH with node, git and the system's tools but no dbt: neither the test venv nor a .venv. */
const PATH_WITHOUT_DBT = [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');

/** site-packages of the test venv: dbt and its adapters, with the dbt_project.yml files they bundle. */
const SITE_PACKAGES = join(VENV_BIN, '..', 'lib', readdirSync(join(VENV_BIN, '..', 'lib'))[0], 'site-packages');

describe('nx add nx-dbt-isolated in a workspace made with git init, npm init and npm i -D nx', () => {
  let dir: string;
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  const nxJson = () => JSON.parse(read('nx.json'));

  beforeAll(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'nx-dbt-init-')));
    // As `npm init -y` writes it; no nx.json: `npm i -D nx` writes none.
    const packageJson = { name: 'fresh', version: '1.0.0', main: 'index.js', scripts: {}, license: 'ISC' };
    writeFileSync(join(dir, 'package.json'), JSON.stringify(packageJson, null, 2) + '\n');
    writeFileSync(join(dir, '.gitignore'), 'node_modules\n');
    // The .venv getting-started suggests, holding dbt: its packages bundle dbt_project.yml files.
    execFileSync('python3', ['-m', 'venv', '--without-pip', join(dir, '.venv')]);
    const venvLib = join(dir, '.venv', 'lib');
    cpSync(join(SITE_PACKAGES, 'dbt'), join(venvLib, readdirSync(venvLib)[0], 'site-packages', 'dbt'), {
      recursive: true,
    });
    cpSync(join(REPO_ROOT, 'e2e', 'fixtures', 'workspace', 'analytics'), join(dir, 'analytics'), { recursive: true });
    git(dir, 'init', '-q', '-b', 'main');
    // The workspace's own install, as a user's: nx only, the plugin comes with nx add.
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--save-dev', `nx@${NX_VERSION}`], {
      cwd: dir,
      stdio: 'ignore',
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('installs the package, writes nx.json registering the plugin, keeps .dot and .venv out of git, and names the dbt it found', async () => {
    expect(existsSync(join(dir, 'nx.json'))).toBe(false);
    const added = await runNx(dir, ['add', `nx-dbt-isolated@file:${TARBALL}`]);
    expect(outcome(added)).toEqual(SUCCEEDED);
    expect(added.output).toContain(`nx-dbt-isolated: builds will run ${join(VENV_BIN, 'dbt')}.`);
    expect(JSON.parse(read('package.json')).devDependencies['nx-dbt-isolated']).toMatch(/^file:/);
    expect(nxJson().plugins).toEqual(['nx-dbt-isolated']);
    expect(read('.gitignore').split('\n')).toEqual(expect.arrayContaining(['node_modules', '.dot/', '.venv/']));
    expect(
      git(dir, 'add', '-A', '--dry-run')
        .split('\n')
        .filter((line) => line.includes('.venv')),
    ).toEqual([]);
    expect(read('.nxignore').split('\n')).toContain('.dot/');
    expect(existsSync(join(dir, 'dbt-requirements.txt'))).toBe(false);

    // dbt's own bundled projects in .venv are no Nx projects.
    const projects = await runNx(dir, ['show', 'projects', '--json']);
    expect(outcome(projects)).toEqual(SUCCEEDED);
    expect(JSON.parse(projects.output.slice(projects.output.indexOf('[')))).toEqual(['analytics']);
    const shown = await runNx(dir, ['show', 'project', 'analytics', '--json']);
    expect(outcome(shown)).toEqual(SUCCEEDED);
    const targets = JSON.parse(shown.output.slice(shown.output.indexOf('{'))).targets;
    expect(Object.keys(targets).sort()).toEqual(['clean', 'dbt', 'diff', 'docs', 'isolated-build', 'promote']);
  });

  it('changes nothing when run again, and keeps the options of an existing registration', async () => {
    const registered = { plugin: 'nx-dbt-isolated', options: { isolatedBuildTargetName: 'dbt-build' } };
    writeFileSync(join(dir, 'nx.json'), JSON.stringify({ plugins: [registered] }, null, 2) + '\n');
    const before = ['nx.json', '.gitignore', '.nxignore'].map(read);
    const again = await runNx(dir, ['g', 'nx-dbt-isolated:init']);
    expect(outcome(again)).toEqual(SUCCEEDED);
    expect(['nx.json', '.gitignore', '.nxignore'].map(read)).toEqual(before);
    writeFileSync(join(dir, 'nx.json'), JSON.stringify({ plugins: ['nx-dbt-isolated'] }, null, 2) + '\n');
  });

  it('says how to install dbt where there is none, and writes the requirements for a .venv', async () => {
    const init = await runNx(dir, ['g', 'nx-dbt-isolated:init'], { PATH: PATH_WITHOUT_DBT });
    expect(outcome(init)).toEqual(SUCCEEDED);
    expect(init.output).toContain(
      "nx-dbt-isolated: dbt was not found in .venv/bin nor on PATH: install it with 'python3 -m venv .venv && .venv/bin/pip install -r dbt-requirements.txt'",
    );
    expect(read('dbt-requirements.txt')).toMatch(/^dbt-core==\d+\.\d+\.\d+$/m);
  });
});
