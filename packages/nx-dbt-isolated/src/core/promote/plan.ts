import { join } from 'node:path';
import { readManifestResources, writesToWarehouse, type ManifestNode } from '../dbt/artifacts';
import { adapterFor, type DbtAdapter } from '../dbt/adapters';
import { UserError } from '../workspace/errors';
import { RESULT_PREFIX, runOperation, type WarehouseConnection } from '../dbt/operation';
import type { RecordedBuild } from '../build/records';
import { quoteIdentifier, quoteLiteral, runInTransaction } from '../warehouse/sql';

/** The table in each promoted schema listing the views promotion made there. */
export const PROMOTION_TABLE = 'nx_dbt_isolated_promotion';

/** A view over one relation of the promoted build. */
export interface PromotedView {
  schema: string;
  name: string;
  /** The build's schema holding the relation, of the same name. */
  sourceSchema: string;
}

/** One row of a promotion table, as the warehouse holds it. */
export interface PromotionRow {
  schema: string;
  view: string;
  sourceSchema: string;
  commit: string;
  project: string;
  /** The schema named by `--schema`: a promotion's views live in it and its `_<custom>` siblings. */
  promotedAs: string;
}

/** What the warehouse holds where promotion would write: relations by schema, and its own promotion rows. */
export interface PromotionState {
  relations: { schema: string; name: string; type: string }[];
  rows: PromotionRow[];
}

export type PromotionAction =
  | { kind: 'create' | 'replace'; view: PromotedView }
  | { kind: 'drop'; view: { schema: string; name: string } };

export interface PromotionPlan {
  actions: PromotionAction[];
  /** Schemas that must exist for the views. */
  schemas: string[];
}

/**
 * The views promoting the build to `promotedAs` makes: one per relation the build's manifest
 * materialises, in `promotedAs` for the build's own schema and `promotedAs_<custom>` for a
 * custom schema `<schema>_<custom>` beside it.
 */
export function promotedViews(build: RecordedBuild, promotedAs: string): { views: PromotedView[]; skipped: string[] } {
  const nodes = readManifestResources(join(build.paths.targetPath, 'manifest.json'));
  if (!nodes) {
    throw new UserError(
      `${build.paths.targetPath}/manifest.json cannot be read: build ${build.record.commit.slice(0, 12)} again, then promote it.`,
    );
  }
  const views: PromotedView[] = [];
  const skipped: string[] = [];
  const iso = build.record.schema;
  for (const node of nodes.filter(isPromotedRelation)) {
    const name = node.alias ?? node.name;
    const suffix =
      node.schema === iso ? '' : node.schema.startsWith(`${iso}_`) ? node.schema.slice(iso.length) : undefined;
    if (suffix === undefined) skipped.push(`${node.unique_id} (in ${node.schema}, outside the build's schemas)`);
    else views.push({ schema: `${promotedAs}${suffix}`, name, sourceSchema: node.schema });
  }
  return { views: views.sort(byPlace), skipped };
}

/** Relations a view can stand for: not a test's stored failures, not a function. */
function isPromotedRelation(node: ManifestNode): boolean {
  return node.resource_type !== 'test' && node.resource_type !== 'function' && writesToWarehouse(node);
}

function byPlace(a: { schema: string; name: string }, b: { schema: string; name: string }): number {
  return a.schema.localeCompare(b.schema) || a.name.localeCompare(b.name);
}

/**
 * Creates or replaces each view and drops the views an earlier promotion to `promotedAs` made
 * that the build no longer has. A relation promotion did not make is never replaced.
 */
export function planPromotion(views: PromotedView[], state: PromotionState, promotedAs: string): PromotionPlan {
  const ours = state.rows.filter((row) => row.promotedAs === promotedAs);
  const made = new Set(ours.map((row) => placeKey(row.schema, row.view)));
  const existing = new Map(state.relations.map((relation) => [placeKey(relation.schema, relation.name), relation]));
  const foreign = views.filter(
    (view) => existing.has(placeKey(view.schema, view.name)) && !made.has(placeKey(view.schema, view.name)),
  );
  if (foreign.length > 0) {
    const names = foreign.map((view) => `${view.schema}.${view.name}`).join(', ');
    throw new UserError(
      `${names} already ${foreign.length === 1 ? 'exists' : 'exist'} and ${foreign.length === 1 ? 'was' : 'were'} not made by a promotion to ${promotedAs}: promotion never replaces a relation it did not make; move ${foreign.length === 1 ? 'it' : 'them'} away, or promote to another --schema.`,
    );
  }
  const wanted = new Set(views.map((view) => placeKey(view.schema, view.name)));
  const actions: PromotionAction[] = views.map((view) => ({
    kind: existing.has(placeKey(view.schema, view.name)) ? 'replace' : 'create',
    view,
  }));
  for (const row of ours.filter((candidate) => !wanted.has(placeKey(candidate.schema, candidate.view)))) {
    if (existing.get(placeKey(row.schema, row.view))?.type === 'VIEW') {
      actions.push({ kind: 'drop', view: { schema: row.schema, name: row.view } });
    }
  }
  return { actions, schemas: [...new Set(views.map((view) => view.schema))].sort() };
}

function placeKey(schema: string, name: string): string {
  return `${schema}\u0000${name}`;
}

export interface PromotionStamp {
  commit: string;
  project: string;
  promotedAs: string;
  at: string;
}

/**
 * The statements of a promotion, to run in one transaction: schemas and promotion tables first,
 * then each view dropped and made again (a replaced relation's columns may differ), then the
 * promotion tables rewritten to list what this promotion made.
 */
export function promotionStatements(
  plan: PromotionPlan,
  state: PromotionState,
  stamp: PromotionStamp,
  warehouseType: string,
): string[] {
  const table = (schema: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(PROMOTION_TABLE)}`;
  const relation = (schema: string, name: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
  const tableSchemas = [
    ...new Set([
      ...plan.schemas,
      ...state.rows.filter((row) => row.promotedAs === stamp.promotedAs).map((row) => row.schema),
    ]),
  ].sort();
  const statements = lockViewsFirst(plan, adapterFor(warehouseType));
  statements.push(
    ...plan.schemas.flatMap((schema) => [
      `create schema if not exists ${quoteIdentifier(schema)}`,
      `create table if not exists ${table(schema)} (view_name varchar, source_schema varchar, commit_sha varchar, project varchar, promoted_as varchar, promoted_at varchar)`,
    ]),
  );
  for (const action of plan.actions) {
    if (action.kind !== 'create')
      statements.push(`drop view if exists ${relation(action.view.schema, action.view.name)}`);
    if (action.kind !== 'drop') {
      const { view } = action;
      statements.push(
        `create view ${relation(view.schema, view.name)} as select * from ${relation(view.sourceSchema, view.name)}`,
      );
    }
  }
  for (const schema of tableSchemas) {
    statements.push(`delete from ${table(schema)} where promoted_as = ${quoteLiteral(stamp.promotedAs)}`);
    const rows = plan.actions
      .filter((action): action is Extract<PromotionAction, { kind: 'create' | 'replace' }> => action.kind !== 'drop')
      .filter((action) => action.view.schema === schema)
      .map(({ view }) =>
        [view.name, view.sourceSchema, stamp.commit, stamp.project, stamp.promotedAs, stamp.at]
          .map(quoteLiteral)
          .join(', '),
      );
    if (rows.length > 0) statements.push(`insert into ${table(schema)} values (${rows.join('), (')})`);
  }
  return statements;
}

/** The views the switch replaces or drops, taken first where the adapter says so. */
function lockViewsFirst(plan: PromotionPlan, adapter: DbtAdapter): string[] {
  const existing = plan.actions.filter((action) => action.kind !== 'create');
  if (!adapter.lockViews || existing.length === 0) return [];
  return [
    adapter.lockViews(existing.map(({ view }) => `${quoteIdentifier(view.schema)}.${quoteIdentifier(view.name)}`)),
  ];
}

const STATE_MACRO = 'nx_dbt_isolated_promotion_state';

/**
 * Lists every promotion table's rows in the target's database, then the relations of the given
 * schemas and of those holding promotion tables, in one dbt run. The rows name the schemas
 * promoted views read from: what a clean must not drop.
 */
const STATE_MACRO_FILE = `{% macro ${STATE_MACRO}(schemas) %}
  {% set rows = [] %}
  {% set places = [] %}
  {% for schema in schemas %}{% do places.append(schema) %}{% endfor %}
  {% set tables = run_query("select table_schema from information_schema.tables where table_catalog = current_database() and table_name = '${PROMOTION_TABLE}'") %}
  {% for table in tables.rows %}
    {% do places.append(table[0]) %}
    {% set listed = run_query('select view_name, source_schema, commit_sha, project, promoted_as from "' ~ table[0] | replace('"', '""') ~ '"."${PROMOTION_TABLE}"') %}
    {% for row in listed.rows %}{% do rows.append([table[0], row[0], row[1], row[2], row[3], row[4]]) %}{% endfor %}
  {% endfor %}
  {% set relations = [] %}
  {% if places %}
    {% set quoted = [] %}
    {% for place in places %}{% do quoted.append("'" ~ place | replace("'", "''") ~ "'") %}{% endfor %}
    {% set found = run_query("select table_schema, table_name, table_type from information_schema.tables where table_catalog = current_database() and table_schema in (" ~ quoted | join(', ') ~ ")") %}
    {% for row in found.rows %}{% do relations.append([row[0], row[1], row[2]]) %}{% endfor %}
  {% endif %}
  {{ print('${RESULT_PREFIX}' ~ tojson({'relations': relations, 'rows': rows})) }}
{% endmacro %}
`;

/** What the warehouse holds in `schemas`, and every promotion row of its database. */
export async function readPromotionState(connection: WarehouseConnection, schemas: string[]): Promise<PromotionState> {
  const state = (await runOperation(connection, {
    macro: STATE_MACRO,
    text: STATE_MACRO_FILE,
    args: { schemas },
    failure: (lastLine) =>
      `dbt could not read the promoted views of ${connection.profilesDir}/profiles.yml's warehouse (${lastLine}): check that the warehouse is reachable with that profile, then run again.`,
  })) as { relations: string[][]; rows: string[][] };
  return {
    relations: state.relations.map(([schema, name, type]) => ({ schema, name, type })),
    rows: state.rows.map(([schema, view, sourceSchema, commit, project, promotedAs]) => ({
      schema,
      view,
      sourceSchema,
      commit,
      project,
      promotedAs,
    })),
  };
}

/** Switches the views in one transaction: readers see the old set or the new one, never a mix. */
export function applyPromotion(
  connection: WarehouseConnection,
  plan: PromotionPlan,
  state: PromotionState,
  stamp: PromotionStamp,
  warehouseType: string,
): Promise<void> {
  const statements = promotionStatements(plan, state, stamp, warehouseType);
  return runInTransaction(connection, statements, `promote to ${stamp.promotedAs}`);
}
