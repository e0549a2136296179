import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { makeTempDir, removeDir } from '../../core/testing/git-repo';
import initGenerator, { DBT_REQUIREMENTS_FILE } from './generator';

describe('init generator', () => {
  let tree: Tree;
  let root: string;
  const path = process.env.PATH;

  beforeEach(() => {
    // The tree's root is a real folder, where the generator looks for .venv/bin/dbt.
    root = makeTempDir();
    tree = createTreeWithEmptyWorkspace();
    Object.defineProperty(tree, 'root', { value: root });
    process.env.PATH = '';
    jest.spyOn(logger, 'info').mockImplementation(() => undefined);
    jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    process.env.PATH = path;
    jest.restoreAllMocks();
    removeDir(root);
  });

  it('registers the plugin in nx.json once, keeping the other plugins and options', async () => {
    updateNxJson(tree, {
      ...readNxJson(tree),
      plugins: ['@nx/js', { plugin: '@nx/jest', options: { targetName: 'test' } }],
    });
    await initGenerator(tree, { skipFormat: true });
    await initGenerator(tree, { skipFormat: true });
    expect(readNxJson(tree)?.plugins).toEqual([
      '@nx/js',
      { plugin: '@nx/jest', options: { targetName: 'test' } },
      'nx-dbt-isolated',
    ]);
  });

  it('writes nx.json with the plugin where the workspace has none', async () => {
    tree.delete('nx.json');
    await initGenerator(tree, { skipFormat: true });
    expect(readNxJson(tree)?.plugins).toEqual(['nx-dbt-isolated']);
  });

  it('adds a Python environment at the top level to .gitignore, once, and leaves other folders alone', async () => {
    tree.write('.gitignore', 'node_modules\n/.venv\n');
    tree.write('.venv/pyvenv.cfg', 'home = /usr/bin\n');
    tree.write('envs/conda-meta/history', '');
    tree.write('analytics/dbt_project.yml', 'name: analytics\n');
    await initGenerator(tree, { skipFormat: true });
    await initGenerator(tree, { skipFormat: true });
    expect(tree.read('.gitignore', 'utf8')).toBe(
      'node_modules\n/.venv\n# nx-dbt-isolated: checkouts and artifacts of isolated builds\n.dot/\n' +
        '# nx-dbt-isolated: the Python environment dbt runs from\nenvs/\n',
    );
  });

  it('leaves a registration with options as it is', async () => {
    const configured = { plugin: 'nx-dbt-isolated', options: { isolatedBuildTargetName: 'dbt-build' } };
    updateNxJson(tree, { ...readNxJson(tree), plugins: [configured] });
    await initGenerator(tree, { skipFormat: true });
    expect(readNxJson(tree)?.plugins).toEqual([configured]);
  });

  it('adds .dot/ to .gitignore and .nxignore, creating them, once', async () => {
    tree.write('.gitignore', 'node_modules');
    await initGenerator(tree, { skipFormat: true });
    await initGenerator(tree, { skipFormat: true });
    expect(tree.read('.gitignore', 'utf8')).toBe(
      'node_modules\n# nx-dbt-isolated: checkouts and artifacts of isolated builds\n.dot/\n',
    );
    expect(tree.read('.nxignore', 'utf8')).toBe(
      '# nx-dbt-isolated: checkouts and artifacts of isolated builds\n.dot/\n',
    );
  });

  it.each(['.dot', '/.dot/', '  .dot/  '])('counts an existing line %j as ignoring the folder', async (line) => {
    tree.write('.gitignore', `dist\n${line}\n`);
    await initGenerator(tree, { skipFormat: true });
    expect(tree.read('.gitignore', 'utf8')).toBe(`dist\n${line}\n`);
  });

  it('says how to install dbt when there is none, and writes the requirements for a .venv', async () => {
    await initGenerator(tree, { skipFormat: true });
    expect(logger.warn).toHaveBeenCalledWith(
      `nx-dbt-isolated: dbt was not found in .venv/bin nor on PATH: install it with 'python3 -m venv .venv && .venv/bin/pip install -r ${DBT_REQUIREMENTS_FILE}' (or set the executors' dbtExecutable option).`,
    );
    // The versions the repository's own tests run with (requirements.txt), dbt and its adapters.
    const dbtPins = (text: string) => text.split('\n').filter((line) => /^dbt-(core|duckdb|postgres)==/.test(line));
    const tested = readFileSync(join(__dirname, '..', '..', '..', '..', '..', 'requirements.txt'), 'utf8');
    expect(dbtPins(tree.read(DBT_REQUIREMENTS_FILE, 'utf8')!)).toEqual(dbtPins(tested));
    expect(dbtPins(tested)).toHaveLength(3);
  });

  it("names the dbt it found, in the workspace's .venv, and writes no requirements file", async () => {
    mkdirSync(join(root, '.venv', 'bin'), { recursive: true });
    writeFileSync(join(root, '.venv', 'bin', 'dbt'), '#!/bin/sh\n');
    chmodSync(join(root, '.venv', 'bin', 'dbt'), 0o755);
    await initGenerator(tree, { skipFormat: true });
    expect(logger.info).toHaveBeenCalledWith(`nx-dbt-isolated: builds will run ${join(root, '.venv', 'bin', 'dbt')}.`);
    expect(logger.warn).not.toHaveBeenCalled();
    expect(tree.exists(DBT_REQUIREMENTS_FILE)).toBe(false);
  });
});
