import { RESULT_PREFIX, runOperation, type WarehouseConnection } from '../dbt/operation';

/** What one statement returned: values as text (null for SQL null), whatever their type. */
export interface StatementResult {
  columns: string[];
  rows: (string | null)[][];
}

const MACRO = 'nx_dbt_isolated_sql';

/**
 * Runs each statement through the adapter and prints what it returned. Values go out as text:
 * the warehouse's numbers (decimals among them) have no JSON form of their own in dbt's Jinja.
 * A transaction is opened and committed with SQL of its own rather than dbt's auto-begin:
 * dbt-postgres sends no BEGIN (it relies on psycopg2's implicit one, which its own first COMMIT
 * has already spent), so its statements would each commit on their own.
 */
const MACRO_FILE = `{% macro ${MACRO}(statements, transaction) %}
  {% set results = [] %}
  {% if transaction %}{% do run_query('begin') %}{% endif %}
  {% for sql in statements %}
    {% call statement('${MACRO}', fetch_result=True, auto_begin=False) %}{{ sql }}{% endcall %}
    {% set table = load_result('${MACRO}').table %}
    {% set rows = [] %}
    {% for row in table.rows %}
      {% set cells = [] %}
      {% for value in row.values() %}
        {% do cells.append(none if value is none else value | string) %}
      {% endfor %}
      {% do rows.append(cells) %}
    {% endfor %}
    {% do results.append({'columns': table.column_names | list, 'rows': rows}) %}
  {% endfor %}
  {% if transaction %}{% do run_query('commit') %}{% endif %}
  {{ print('${RESULT_PREFIX}' ~ tojson(results)) }}
{% endmacro %}
`;

/** Runs read-only statements with one dbt process and returns their results in order. */
export function runQueries(connection: WarehouseConnection, statements: string[], purpose: string) {
  return runStatements(connection, statements, false, purpose);
}

/**
 * Runs statements in one transaction, committed after the last: all of them take effect or none,
 * and other sessions see none of them before the commit.
 */
export async function runInTransaction(
  connection: WarehouseConnection,
  statements: string[],
  purpose: string,
): Promise<void> {
  await runStatements(connection, statements, true, purpose);
}

async function runStatements(
  connection: WarehouseConnection,
  statements: string[],
  transaction: boolean,
  purpose: string,
): Promise<StatementResult[]> {
  if (statements.length === 0) return [];
  const results = await runOperation(connection, {
    macro: MACRO,
    text: MACRO_FILE,
    args: { statements, transaction },
    failure: (lastLine) =>
      `the warehouse refused to ${purpose} (${lastLine}), with the connection of ${connection.profilesDir}/profiles.yml: fix what it names, then run again.`,
  });
  return results as StatementResult[];
}

/** `"name"`, with quotes inside doubled: an identifier as PostgreSQL, DuckDB and most SQL read it. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `'text'`, with quotes inside doubled. */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
