import { randomUUID } from 'node:crypto';
import { mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { captureDbt, dbtEnvironment } from './dbt';
import { dotRoot } from './dot-layout';
import { UserError } from './errors';

export interface SchemaDropRequest {
  workspaceRoot: string;
  dbt: string;
  /** The folder of a build's generated profiles.yml: the connection that build wrote with. */
  profilesDir: string;
  profile: string;
  target: string;
  schemas: string[];
  /** False: only find out which of the schemas exist. */
  drop: boolean;
  env: NodeJS.ProcessEnv;
}

const MACRO = 'nx_dbt_isolated_drop_schemas';
const RESULT_PREFIX = 'nx-dbt-isolated-schemas:';

const PROJECT_FILE = `# Written by nx-dbt-isolated to drop the schemas of cleaned builds; removed after use.
name: nx_dbt_isolated_schema_drop
version: "1.0"
config-version: 2
profile: nx_dbt_isolated
macro-paths: ["macros"]
`;

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
 * Drops `schemas` (or, with `drop: false`, only looks for them) with a small dbt project made
 * for the purpose under `.dot/tmp`, connecting with a build's own generated profile. Returns the
 * schemas that existed.
 */
export async function dropSchemas(request: SchemaDropRequest): Promise<string[]> {
  if (request.schemas.length === 0) return [];
  const projectDir = join(dotRoot(request.workspaceRoot), 'tmp', `schema-drop-${randomUUID()}`);
  mkdirSync(join(projectDir, 'macros'), { recursive: true });
  writeFileSync(join(projectDir, 'dbt_project.yml'), PROJECT_FILE);
  writeFileSync(join(projectDir, 'macros', 'drop_schemas.sql'), MACRO_FILE);
  try {
    const args = JSON.stringify({ schemas: request.schemas, drop: request.drop });
    const { code, output } = await captureDbt(
      request.dbt,
      [
        '--quiet',
        'run-operation',
        MACRO,
        '--args',
        args,
        '--project-dir',
        projectDir,
        '--profiles-dir',
        request.profilesDir,
        '--profile',
        request.profile,
        '--target',
        request.target,
        '--target-path',
        join(projectDir, 'target'),
        '--log-path',
        join(projectDir, 'logs'),
      ],
      projectDir,
      dbtEnvironment(request.env),
    );
    const existing = code === 0 ? parseResult(output) : undefined;
    if (existing) return existing;
    throw new UserError(
      `dbt could not ${request.drop ? 'drop' : 'look for'} schemas ${request.schemas.join(', ')} with ${join(request.profilesDir, 'profiles.yml')} (${lastLine(output)}): check that the warehouse is reachable with that profile, then run the clean again.`,
    );
  } finally {
    rmSync(projectDir, { recursive: true, force: true });
    removeIfEmpty(dirname(projectDir));
  }
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Another clean's project is still in it; that clean removes the folder.
  }
}

function parseResult(output: string): string[] | undefined {
  const line = output.split('\n').find((text) => text.startsWith(RESULT_PREFIX));
  if (line === undefined) return undefined;
  const existing: unknown = JSON.parse(line.slice(RESULT_PREFIX.length));
  return Array.isArray(existing) ? existing.map(String) : undefined;
}

function lastLine(output: string): string {
  const lines = output
    .split('\n')
    .map((line) => stripVTControlCharacters(line).trim())
    .filter(Boolean);
  return lines.at(-1) ?? 'no output';
}
