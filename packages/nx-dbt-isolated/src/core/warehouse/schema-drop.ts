import { join } from 'node:path';
import { UserError } from '../workspace/errors';
import { RESULT_PREFIX, runOperation, type WarehouseConnection } from '../dbt/operation';
import { PROMOTION_TABLE } from '../promote/plan';

export interface SchemaDropRequest extends WarehouseConnection {
  schemas: string[];
  /** False: only find out which of the schemas exist. */
  drop: boolean;
  /** `nx run <project>:<promote target>`, for the refusal to drop a schema promoted views read. */
  promoteCommand: string;
}

const MACRO = 'nx_dbt_isolated_drop_schemas';
/** The macro that drops and returns what it found, for another macro to call (see claims.ts). */
export const DROP_RESULT_MACRO = `${MACRO}_result`;

/**
 * Checks each schema in the target's database and drops the ones that exist (cascading to their
 * relations), through the adapter, so it works with any warehouse dbt supports. Drops nothing
 * when a promotion table (see promote/plan.ts) lists one of them as the source of promoted views:
 * on a shared warehouse another workspace may have promoted the same commit's schemas.
 */
export const DROP_MACROS = `{% macro ${DROP_RESULT_MACRO}(schemas, drop) %}
  {% set promoted = [] %}
  {% if drop %}
    {% set tables = run_query("select table_schema from information_schema.tables where table_catalog = current_database() and table_name = '${PROMOTION_TABLE}'") %}
    {% for table in tables.rows %}
      {% set sources = run_query('select distinct source_schema, promoted_as from "' ~ table[0] | replace('"', '""') ~ '"."${PROMOTION_TABLE}"') %}
      {% for source in sources.rows %}
        {% if source[0] in schemas %}{% do promoted.append([source[0], source[1]]) %}{% endif %}
      {% endfor %}
    {% endfor %}
  {% endif %}
  {% set existing = [] %}
  {% for schema in schemas %}
    {% if adapter.check_schema_exists(target.database, schema) %}
      {% do existing.append(schema) %}
      {% if drop and not promoted %}
        {% do adapter.drop_schema(api.Relation.create(database=target.database, schema=schema)) %}
      {% endif %}
    {% endif %}
  {% endfor %}
  {{ return({'existing': existing, 'promoted': promoted}) }}
{% endmacro %}
{% macro ${MACRO}(schemas, drop) %}
  {{ print('${RESULT_PREFIX}' ~ tojson(${DROP_RESULT_MACRO}(schemas, drop))) }}
{% endmacro %}
`;

/**
 * Drops `schemas` (or, with `drop: false`, only looks for them), connecting with a build's own
 * generated profile. Returns the schemas that existed.
 */
export async function dropSchemas(request: SchemaDropRequest): Promise<string[]> {
  if (request.schemas.length === 0) return [];
  const result = (await runOperation(request, {
    macro: MACRO,
    text: DROP_MACROS,
    args: { schemas: request.schemas, drop: request.drop },
    failure: (lastLine) =>
      `dbt could not ${request.drop ? 'drop' : 'look for'} schemas ${request.schemas.join(', ')} with ${join(request.profilesDir, 'profiles.yml')} (${lastLine}): check that the warehouse is reachable with that profile, then run the clean again.`,
  })) as { existing: string[]; promoted: [string, string][] };
  if (result.promoted.length > 0) throw promotedError(result.promoted, request.promoteCommand);
  return result.existing;
}

export function promotedError(promoted: [string, string][], promoteCommand: string): UserError {
  const read = promoted.map(([source, promotedAs]) => `${source} (by ${promotedAs})`).join(', ');
  return new UserError(
    `promoted views read ${read}, so no schema was dropped: promote another commit to ${promoted[0][1]} first (${promoteCommand} --ref=<ref> --schema=${promoted[0][1]}), then clean again.`,
  );
}
