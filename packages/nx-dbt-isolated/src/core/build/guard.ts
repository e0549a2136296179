import { readManifestResources, writesToWarehouse, type WriteOptions } from '../dbt/artifacts';
import { UserError } from '../workspace/errors';
import { mayWriteToSharedSchema, sharedSchemaOf } from './shared-schemas';

/** Where a build may write: its isolated schema and the database of its dbt target. */
export interface IsolationBounds {
  /** `<schema>_<id>`: relations go there or into a schema that starts with `<schema>_<id>_`. */
  schema: string;
  /** The target's database, when the plugin can tell it from the profile. */
  database?: string;
  /** Node unique ids or names that the user lets write elsewhere (the `isolationExceptions` option). */
  exceptions: string[];
  /** Schemas where seeds and snapshots may write (the `sharedSchemas` option, shared-schemas.ts). */
  sharedSchemas?: string[];
}

export interface EscapingNode {
  uniqueId: string;
  /** `<database>.<schema>` the node would write to. */
  writesTo: string;
}

/**
 * The resources of a parsed manifest that would create or change something outside the build's
 * isolated schema or database: models, seeds and snapshots that are not ephemeral, functions,
 * and tests that store their failures.
 */
export function escapingNodes(
  manifestFile: string,
  bounds: IsolationBounds,
  writes: WriteOptions = {},
): EscapingNode[] {
  const nodes = readManifestResources(manifestFile);
  if (!nodes) {
    throw new UserError(
      `dbt parse wrote no readable manifest (${manifestFile}): run the build again; if it persists, run dbt parse in the project to see why.`,
    );
  }
  const excepted = new Set(bounds.exceptions);
  return nodes
    .filter((node) => writesToWarehouse(node, writes))
    .filter((node) => !excepted.has(node.unique_id) && !excepted.has(node.name))
    .filter(
      (node) =>
        !(mayWriteToSharedSchema(node, bounds.sharedSchemas ?? []) && insideDatabase(node.database, bounds.database)),
    )
    .filter((node) => !insideSchema(node.schema, bounds.schema) || !insideDatabase(node.database, bounds.database))
    .map((node) => ({ uniqueId: node.unique_id, writesTo: `${node.database ?? ''}.${node.schema}` }))
    .sort((a, b) => a.uniqueId.localeCompare(b.uniqueId));
}
function insideSchema(schema: string, isolated: string): boolean {
  return schema === isolated || schema.startsWith(`${isolated}_`);
}

function insideDatabase(database: string | null | undefined, expected: string | undefined): boolean {
  if (expected === undefined || database === undefined || database === null) return true;
  return database.toLowerCase() === expected.toLowerCase();
}

/** One line naming each node that would escape, where it would write, and the ways out. */
export function escapeError(escaping: EscapingNode[], bounds: IsolationBounds): UserError {
  const listed = escaping.map(({ uniqueId, writesTo }) => `${uniqueId} → ${writesTo}`).join(', ');
  const where = bounds.database ? `${bounds.database}.${bounds.schema}` : bounds.schema;
  const shared = bounds.sharedSchemas ?? [];
  const intoShared = escaping.some(({ writesTo }) => sharedSchemaOf({ schema: writesTo.split('.').pop()! }, shared));
  const sharedRule = intoShared ? ` (the shared schemas ${shared.join(', ')} take seeds and snapshots only)` : '';
  return new UserError(
    `refused to build: ${escaping.length} node(s) would write outside the isolated schema ${where}${sharedRule} (${listed}); make generate_schema_name append custom schemas to target.schema for this target, drop +database/target_schema/target_database overrides, name a schema of shared source data in the sharedSchemas option, or list the nodes in the isolationExceptions option if writing there is intended.`,
  );
}
