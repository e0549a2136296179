import { formatFiles, logger, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
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
  checkDbt(tree);
  if (!options.skipFormat) await formatFiles(tree);
}

/** Adds the plugin to nx.json's plugins unless it is there, as a name or with options. */
export function registerPlugin(tree: Tree): void {
  const nxJson = readNxJson(tree) ?? {};
  const plugins = nxJson.plugins ?? [];
  const registered = plugins.some((entry) => (typeof entry === 'string' ? entry : entry.plugin) === PLUGIN_NAME);
  if (registered) return;
  updateNxJson(tree, { ...nxJson, plugins: [...plugins, PLUGIN_NAME] });
}

/** Appends `.dot/` to the ignore file, creating it, unless a line already names the folder. */
export function ignoreDotFolder(tree: Tree, file: string): void {
  const text = tree.exists(file) ? tree.read(file, 'utf8')! : '';
  const names = new Set([DOT_FOLDER, `${DOT_FOLDER}/`, `/${DOT_FOLDER}`, `/${DOT_FOLDER}/`]);
  if (text.split(/\r?\n/).some((line) => names.has(line.trim()))) return;
  const separator = text === '' || text.endsWith('\n') ? '' : '\n';
  tree.write(
    file,
    `${text}${separator}# nx-dbt-isolated: checkouts and artifacts of isolated builds\n${DOT_FOLDER}/\n`,
  );
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
