import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readManifestResources } from '../../dbt/artifacts';
import { quoteLiteral, runQueries } from '../../warehouse/sql';
import { UserError } from '../../workspace/errors';
import { excludeLoadedSeeds, sharedSeeds, type SharedSeed } from '../shared-schemas';
import { buildConnection, type BuildContext } from './context';

/**
 * dbt's arguments that leave out the seeds of shared schemas already loaded there: a shared seed
 * is loaded once, by the first build that finds its relation missing, and no isolated build loads
 * it again (a full refresh would drop it, and on PostgreSQL every view that reads it, with
 * cascade). Asked of the warehouse under its lock, just before the command runs.
 */
export async function sharedSeedsToLeaveOut(context: BuildContext): Promise<string[]> {
  const { request, paths, reporter } = context;
  if (!['build', 'seed'].includes(request.command)) return [];
  const seeds = sharedSeeds(
    readManifestResources(join(paths.targetPath, 'manifest.json')) ?? [],
    request.sharedSchemas ?? [],
  );
  if (seeds.length === 0) return [];
  const schemas = [...new Set(seeds.map(({ schema }) => schema))];
  const [tables] = await runQueries(
    buildConnection(context),
    [
      `select table_schema || '.' || table_name as relation from information_schema.tables where table_catalog = current_database() and table_schema in (${schemas.map(quoteLiteral).join(', ')})`,
    ],
    `find which seeds ${schemas.join(', ')} holds already`,
  );
  const { loaded, args } = excludeLoadedSeeds(seeds, new Set(tables.rows.map((row) => String(row[0]))));
  if (loaded.length === 0) return [];
  refuseSelector(context, loaded);
  reporter.info(
    `• shared schemas: ${loaded.map(({ schema, relation }) => `${schema}.${relation}`).join(', ')} loaded already, not loaded again (no isolated build reloads shared data: drop the table, and the next build loads it from its commit)`,
  );
  return args;
}

/** dbt ignores --exclude beside a selector, the project's default one too: the seeds would load again. */
function refuseSelector({ request, checkedOut }: BuildContext, loaded: SharedSeed[]): void {
  const given =
    request.selection.selector ?? (request.selection.extraArgs ?? []).find((arg) => arg.startsWith('--selector'));
  const chosen =
    given ?? (hasDefaultSelector(checkedOut.projectDir) ? 'the default selector of selectors.yml' : undefined);
  if (chosen === undefined) return;
  throw new UserError(
    `sharedSchemas leaves the loaded seeds ${loaded.map(({ uniqueId }) => uniqueId).join(', ')} out with --exclude, which dbt ignores beside a selector (${chosen}), so they would be loaded again: build with --select/--exclude instead, or make the selector exclude them.`,
  );
}

function hasDefaultSelector(projectDir: string): boolean {
  try {
    const selectors = (
      parse(readFileSync(join(projectDir, 'selectors.yml'), 'utf8')) as { selectors?: { default?: unknown }[] }
    )?.selectors;
    return (selectors ?? []).some((selector) => selector?.default !== undefined && selector.default !== false);
  } catch {
    return false;
  }
}
