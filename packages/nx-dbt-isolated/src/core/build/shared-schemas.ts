import type { ManifestNode } from '../dbt/artifacts';

/**
 * Shared schemas (the isolated-build option `sharedSchemas`) hold source data every build reads:
 * seeds and snapshots may write there, nothing else, so that no model of one commit's build
 * replaces what another commit's build reads.
 */
const SHARED_RESOURCE_TYPES = new Set(['seed', 'snapshot']);

/**
 * The shared schema a node writes to; undefined when it writes elsewhere. Names match exactly, as
 * the manifest has them: dbt-postgres quotes schema names, so `RAW` there is another schema than `raw`.
 */
export function sharedSchemaOf(
  node: Pick<ManifestNode, 'schema'>,
  sharedSchemas: readonly string[],
): string | undefined {
  return sharedSchemas.find((shared) => shared === node.schema);
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
  /** dbt's selector of this seed alone: its package and its file. */
  selector: string;
}

export function sharedSeeds(nodes: readonly ManifestNode[], sharedSchemas: readonly string[]): SharedSeed[] {
  return nodes
    .filter((node) => node.resource_type === 'seed' && sharedSchemaOf(node, sharedSchemas) !== undefined)
    .map((node) => ({
      uniqueId: node.unique_id,
      name: node.name,
      schema: node.schema,
      relation: node.alias ?? node.name,
      // Not fqn:, which matches by prefix (a seed folder of the same name) and without the package.
      selector: `resource_type:seed,package:${node.package_name ?? node.unique_id.split('.')[1]},path:${node.original_file_path ?? ''}`,
    }));
}

/**
 * dbt's arguments that leave out the shared seeds already loaded (`existing`: the relations the
 * shared schemas hold in the target's database, as `schema.relation`): a seed is loaded once, by
 * the first build that finds it missing, and no isolated build loads it again.
 */
export function excludeLoadedSeeds(
  seeds: readonly SharedSeed[],
  existing: ReadonlySet<string>,
): { loaded: SharedSeed[]; args: string[] } {
  const loaded = seeds.filter((seed) => existing.has(`${seed.schema}.${seed.relation}`));
  const args = loaded.flatMap((seed) => ['--exclude', seed.selector]);
  return { loaded, args };
}
