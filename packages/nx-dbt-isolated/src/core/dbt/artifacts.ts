import { readFileSync } from 'node:fs';

export interface RunResultsSummary {
  /** Count of results per status: success, pass, error, fail, skipped, warn… */
  byStatus: Record<string, number>;
  /** The same per resource type (model, test, seed, snapshot…): `{ model: { success: 7 } }`. */
  byType: Record<string, Record<string, number>>;
  /** Node ids that errored or failed, with dbt's message. */
  failures: { node: string; message: string }[];
}

export function summarizeRunResults(file: string): RunResultsSummary | undefined {
  let results: { unique_id: string; status: string; message?: string | null }[];
  try {
    results = JSON.parse(readFileSync(file, 'utf8')).results ?? [];
  } catch {
    return undefined;
  }
  const byStatus: Record<string, number> = {};
  const byType: Record<string, Record<string, number>> = {};
  for (const { unique_id, status } of results) {
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const type = (byType[unique_id.split('.')[0]] ??= {});
    type[status] = (type[status] ?? 0) + 1;
  }
  const failures = results
    .filter((result) => result.status === 'error' || result.status === 'fail')
    .map((result) => ({ node: result.unique_id, message: result.message ?? '' }));
  return { byStatus, byType, failures };
}

/** A node of dbt's manifest.json (or, since dbt 1.11, a function): the parts the plugin reads. */
export interface ManifestNode {
  unique_id: string;
  name: string;
  alias?: string | null;
  resource_type: string;
  database?: string | null;
  schema: string;
  checksum?: { checksum: string };
  package_name?: string;
  /** The node's file, relative to its package's root: what dbt's path: selector matches. */
  original_file_path?: string;
  config?: { materialized?: string; store_failures?: boolean | null; store_failures_as?: string | null };
  /** Generic tests: which one, and its arguments. */
  test_metadata?: { name: string; kwargs?: { column_name?: string } };
  column_name?: string | null;
  /** Tests: the model they test. */
  attached_node?: string | null;
}

/**
 * The resources of a manifest.json that dbt can run: its nodes and, since dbt 1.11, its functions
 * (UDFs), which it keeps apart. Undefined when the file is missing or unreadable.
 */
export function readManifestResources(file: string): ManifestNode[] | undefined {
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    return [...Object.values(manifest.nodes ?? {}), ...Object.values(manifest.functions ?? {})] as ManifestNode[];
  } catch {
    return undefined;
  }
}

export interface ManifestSource {
  unique_id: string;
  database?: string | null;
  schema: string;
  identifier: string;
}

/** The sources of a manifest.json: the relations the project reads without building them. */
export function readManifestSources(file: string): ManifestSource[] {
  try {
    return Object.values(JSON.parse(readFileSync(file, 'utf8')).sources ?? {});
  } catch {
    return [];
  }
}

/** What a build writes beyond what node configs say. */
export interface WriteOptions {
  /** dbt runs with --store-failures (or DBT_STORE_FAILURES): every test stores its failures. */
  allTestFailures?: boolean;
}

/**
 * Schemas holding what the manifest says this build creates: models, seeds, snapshots and
 * functions, and the audit schema of tests that store their failures.
 */
export function schemasInManifest(file: string, options: WriteOptions = {}): string[] {
  const nodes = (readManifestResources(file) ?? []).filter((node) => writesToWarehouse(node, options));
  return [...new Set(nodes.map((node) => node.schema))].sort();
}

/** Whether running the node creates or changes something in the warehouse: a relation or a function. */
export function writesToWarehouse({ resource_type, config }: ManifestNode, options: WriteOptions = {}): boolean {
  if (resource_type === 'test') {
    return Boolean(options.allTestFailures || config?.store_failures || config?.store_failures_as);
  }
  if (resource_type === 'function') return true;
  return ['model', 'seed', 'snapshot'].includes(resource_type) && config?.materialized !== 'ephemeral';
}
