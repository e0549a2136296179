import { formatFiles, logger, readNxJson, updateNxJson, writeJson, type Tree } from '@nx/devkit';
import { findDbt } from '../../core/dbt/executable';
import { DOT_FOLDER } from '../../core/workspace/dot-layout';
import { UserError } from '../../core/workspace/errors';
import type { InitGeneratorOptions } from './schema';

export const PLUGIN_NAME = 'nx-dbt-isolated';
export const DBT_REQUIREMENTS_FILE = 'dbt-requirements.txt';

/** dbt and the adapters the plugin is tested with, pinned as a set that installs together. */
const DBT_REQUIREMENTS = `# dbt for nx-dbt-isolated: python3 -m venv .venv && .venv/bin/pip install -r ${DBT_REQUIREMENTS_FILE}
# Keep the adapter of your warehouse; these versions are the ones nx-dbt-isolated is tested with.
dbt-core==1.11.16
dbt-duckdb==1.11.1
dbt-postgres==1.11.0
`;

/** What `nx add nx-dbt-isolated` runs once the package is installed. */
export default async function initGenerator(tree: Tree, options: InitGeneratorOptions = {}): Promise<void> {
  registerPlugin(tree);
  // A checkout under .dot holds a second copy of every dbt_project.yml: Nx must never see it.
  for (const file of ['.gitignore', '.nxignore']) ignoreDotFolder(tree, file);
  ignorePythonEnvironments(tree);
  checkDbt(tree);
  if (!options.skipFormat) await formatFiles(tree);
}

/** Adds the plugin to nx.json's plugins unless it is there, as a name or with options; writes nx.json where there is none. */
export function registerPlugin(tree: Tree): void {
  if (!tree.exists('nx.json')) {
    writeJson(tree, 'nx.json', { $schema: './node_modules/nx/schemas/nx-schema.json', plugins: [PLUGIN_NAME] });
    return;
  }
  const nxJson = readNxJson(tree) ?? {};
  const plugins = nxJson.plugins ?? [];
  const registered = plugins.some((entry) => (typeof entry === 'string' ? entry : entry.plugin) === PLUGIN_NAME);
  if (registered) return;
  updateNxJson(tree, { ...nxJson, plugins: [...plugins, PLUGIN_NAME] });
}

/** Appends `.dot/` to the ignore file, creating it, unless a line already names the folder. */
export function ignoreDotFolder(tree: Tree, file: string): void {
  ignoreFolder(tree, file, DOT_FOLDER, 'checkouts and artifacts of isolated builds');
}

/**
 * Appends each Python environment at the workspace's top level (a `.venv` holding dbt, say) to
 * .gitignore: its thousands of files, dbt's bundled dbt_project.yml files among them, are not the
 * workspace's.
 */
function ignorePythonEnvironments(tree: Tree): void {
  for (const folder of tree.children('')) {
    if (['pyvenv.cfg', 'conda-meta'].some((marker) => tree.exists(`${folder}/${marker}`))) {
      ignoreFolder(tree, '.gitignore', folder, 'the Python environment dbt runs from');
    }
  }
}

function ignoreFolder(tree: Tree, file: string, folder: string, what: string): void {
  const text = tree.exists(file) ? tree.read(file, 'utf8')! : '';
  const names = new Set([folder, `${folder}/`, `/${folder}`, `/${folder}/`]);
  if (text.split(/\r?\n/).some((line) => names.has(line.trim()))) return;
  const separator = text === '' || text.endsWith('\n') ? '' : '\n';
  tree.write(file, `${text}${separator}# nx-dbt-isolated: ${what}\n${folder}/\n`);
}

/** Says where dbt is, or how to install it, writing a requirements file for a `.venv` then. */
function checkDbt(tree: Tree): void {
  try {
    logger.info(`nx-dbt-isolated: builds will run ${findDbt(tree.root, undefined, process.env.PATH)}.`);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    if (!tree.exists(DBT_REQUIREMENTS_FILE)) tree.write(DBT_REQUIREMENTS_FILE, DBT_REQUIREMENTS);
    logger.warn(
      `nx-dbt-isolated: dbt was not found in .venv/bin nor on PATH: install it with 'python3 -m venv .venv && .venv/bin/pip install -r ${DBT_REQUIREMENTS_FILE}' (or set the executors' dbtExecutable option).`,
    );
  }
}
