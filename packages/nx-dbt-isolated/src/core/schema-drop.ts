import { join } from 'node:path';
import { RESULT_PREFIX, runOperation, type WarehouseConnection } from './operation';

export interface SchemaDropRequest extends WarehouseConnection {
  schemas: string[];
  /** False: only find out which of the schemas exist. */
  drop: boolean;
}

const MACRO = 'nx_dbt_isolated_drop_schemas';

/**
 * Checks each schema in the target's database and drops the ones that exist (cascading to their
 * relations), through the adapter, so it works with any warehouse dbt supports.
 */
const MACRO_FILE = `{% macro ${MACRO}(schemas, drop) %}
  {% set existing = [] %}
  {% for schema in schemas %}
    {% if adapter.check_schema_exists(target.database, schema) %}
      {% do existing.append(schema) %}
      {% if drop %}
        {% do adapter.drop_schema(api.Relation.create(database=target.database, schema=schema)) %}
      {% endif %}
    {% endif %}
  {% endfor %}
  {{ print('${RESULT_PREFIX}' ~ tojson(existing)) }}
{% endmacro %}
`;

/**
 * Drops `schemas` (or, with `drop: false`, only looks for them), connecting with a build's own
 * generated profile. Returns the schemas that existed.
 */
export async function dropSchemas(request: SchemaDropRequest): Promise<string[]> {
  if (request.schemas.length === 0) return [];
  const existing = await runOperation(request, {
    macro: MACRO,
    text: MACRO_FILE,
    args: { schemas: request.schemas, drop: request.drop },
    failure: (lastLine) =>
      `dbt could not ${request.drop ? 'drop' : 'look for'} schemas ${request.schemas.join(', ')} with ${join(request.profilesDir, 'profiles.yml')} (${lastLine}): check that the warehouse is reachable with that profile, then run the clean again.`,
  });
  return (existing as unknown[]).map(String);
}
