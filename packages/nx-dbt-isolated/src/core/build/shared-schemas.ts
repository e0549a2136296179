import type { ManifestNode } from '../dbt/artifacts';

/**
 * Shared schemas (the isolated-build option `sharedSchemas`) hold source data every build reads:
 * seeds and snapshots may write there, nothing else, so that no model of one commit's build
 * replaces what another commit's build reads.
 */
const SHARED_RESOURCE_TYPES = new Set(['seed', 'snapshot']);

/** The shared schema a node writes to, as the option names it; undefined when it writes elsewhere. */
export function sharedSchemaOf(
  node: Pick<ManifestNode, 'schema'>,
  sharedSchemas: readonly string[],
): string | undefined {
  // Warehouses fold unquoted names (Snowflake to upper, PostgreSQL to lower case): match as they would.
  return sharedSchemas.find((shared) => shared.toLowerCase() === node.schema.toLowerCase());
}

/** Whether the node may write where it does because that is a shared schema. */
export function mayWriteToSharedSchema(node: ManifestNode, sharedSchemas: readonly string[]): boolean {
  return SHARED_RESOURCE_TYPES.has(node.resource_type) && sharedSchemaOf(node, sharedSchemas) !== undefined;
}

/** A seed of the manifest that loads into a shared schema, and the relation it loads. */
export interface SharedSeed {
  uniqueId: string;
  name: string;
  schema: string;
  relation: string;
  fqn: string[];
}

export function sharedSeeds(nodes: readonly ManifestNode[], sharedSchemas: readonly string[]): SharedSeed[] {
  return nodes
    .filter((node) => node.resource_type === 'seed' && sharedSchemaOf(node, sharedSchemas) !== undefined)
    .map((node) => ({
      uniqueId: node.unique_id,
      name: node.name,
      schema: node.schema,
      relation: node.alias ?? node.name,
      fqn: node.fqn ?? [node.name],
    }));
}

/**
 * dbt's arguments that leave out the shared seeds already loaded (`existing`: the relations the
 * shared schemas hold, as `schema.relation`, lower case): a seed is loaded once, by the first
 * build that finds it missing.
 */
export function excludeLoadedSeeds(
  seeds: readonly SharedSeed[],
  existing: ReadonlySet<string>,
): { loaded: SharedSeed[]; args: string[] } {
  const loaded = seeds.filter((seed) => existing.has(`${seed.schema}.${seed.relation}`.toLowerCase()));
  const args = loaded.flatMap((seed) => ['--exclude', `resource_type:seed,fqn:${seed.fqn.join('.')}`]);
  return { loaded, args };
}
