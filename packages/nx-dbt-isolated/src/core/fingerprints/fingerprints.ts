import { createHash } from 'node:crypto';

/**
 * A node's fingerprint stands for everything its relation is made from: the SQL dbt ran for it,
 * its configuration, and the fingerprints of every node, source and macro it depends on. Two
 * builds whose nodes have the same fingerprint made the same relation from the same inputs
 * (source data aside), whatever schema each build was in: the build's own schema names are
 * taken out of the SQL before hashing. A node the plugin cannot vouch for gets none, and so is
 * never taken for another: one that did not compile, a seed too large for dbt to checksum its
 * contents, or anything that depends on one.
 */
export type Fingerprints = Record<string, string>;

interface ManifestNodeParts {
  unique_id: string;
  resource_type: string;
  schema?: string;
  alias?: string | null;
  checksum?: { name: string; checksum: string };
  language?: string;
  compiled_code?: string | null;
  raw_code?: string;
  config?: Record<string, unknown>;
  contract?: unknown;
  columns?: unknown;
  depends_on?: { nodes?: string[]; macros?: string[] };
}

interface ManifestSourceParts {
  unique_id: string;
  database?: string | null;
  schema?: string;
  identifier?: string;
  loaded_at_field?: string | null;
  quoting?: unknown;
  config?: Record<string, unknown>;
}

interface ManifestMacroParts {
  unique_id: string;
  macro_sql: string;
  depends_on?: { macros?: string[] };
}

export interface FingerprintManifest {
  metadata?: { dbt_version?: string; adapter_type?: string };
  nodes?: Record<string, ManifestNodeParts>;
  sources?: Record<string, ManifestSourceParts>;
  macros?: Record<string, ManifestMacroParts>;
}

/**
 * The fingerprint of every node of a build's manifest that has one. `buildSchema` is the build's
 * isolated schema (`analytics_1a2b3c4d`): it and the names made from it (`…_finance`) become one
 * placeholder, so that builds of two commits can agree.
 */
export function fingerprintsOf(manifest: FingerprintManifest, buildSchema: string): Fingerprints {
  const scope = [manifest.metadata?.dbt_version ?? '', manifest.metadata?.adapter_type ?? ''];
  const macros = macroFingerprints(manifest.macros ?? {});
  const sources = manifest.sources ?? {};
  const nodes = manifest.nodes ?? {};
  const known = new Map<string, string | undefined>();
  const normalised = (text: string | null | undefined) => (text ?? '').split(buildSchema).join(SCHEMA_PLACEHOLDER);

  const fingerprintOf = (id: string, path: Set<string>): string | undefined => {
    if (known.has(id)) return known.get(id);
    if (path.has(id)) return undefined;
    const source = sources[id];
    const node = nodes[id];
    let fingerprint: string | undefined;
    if (source) fingerprint = hashOf([...scope, 'source', sourceParts(source)]);
    else if (node) {
      const own = nodeParts(node, normalised);
      const inner = new Set(path).add(id);
      const parents = (node.depends_on?.nodes ?? []).map((parent) => [parent, fingerprintOf(parent, inner)]);
      const called = (node.depends_on?.macros ?? []).map((macro) => [macro, macros.get(macro) ?? macro]);
      const complete = own !== undefined && parents.every(([, parent]) => parent !== undefined);
      fingerprint = complete ? hashOf([...scope, node.resource_type, own, sorted(parents), sorted(called)]) : undefined;
    }
    known.set(id, fingerprint);
    return fingerprint;
  };

  const fingerprints: Fingerprints = {};
  for (const id of Object.keys(nodes).sort()) {
    const fingerprint = fingerprintOf(id, new Set());
    if (fingerprint !== undefined) fingerprints[id] = fingerprint;
  }
  return fingerprints;
}

/** What stands for the build's own schema name in the SQL that is hashed. */
const SCHEMA_PLACEHOLDER = '<build schema>';

/**
 * A node's own inputs, or undefined when the plugin cannot vouch for them: a seed is its file's
 * contents (dbt's checksum; a file too large for dbt to read is checksummed by path only), every
 * other node the SQL dbt compiled for this build, with its configuration.
 */
function nodeParts(node: ManifestNodeParts, normalised: (text: string | null | undefined) => string): unknown {
  const config = node.config ?? {};
  const naming = { schema: normalised(node.schema), alias: node.alias ?? null };
  if (node.resource_type === 'seed') {
    if (node.checksum?.name !== 'sha256') return undefined;
    return { checksum: node.checksum.checksum, config, naming, columns: node.columns ?? null };
  }
  if (node.compiled_code === undefined || node.compiled_code === null) return undefined;
  return {
    language: node.language ?? 'sql',
    code: normalised(node.compiled_code),
    config: normalisedConfig(config, normalised),
    naming,
    contract: node.contract ?? null,
  };
}

/** Hooks are SQL too: the build's schema names in them are taken out as in the node's own SQL. */
function normalisedConfig(config: Record<string, unknown>, normalised: (text: string) => string): unknown {
  return JSON.parse(normalised(JSON.stringify(config)));
}

function sourceParts(source: ManifestSourceParts): unknown {
  const { database, schema, identifier, loaded_at_field, quoting, config } = source;
  return { database: database ?? null, schema, identifier, loaded_at_field: loaded_at_field ?? null, quoting, config };
}

/** A macro's fingerprint: its SQL and those of the macros it calls; a macro that calls itself back counts its name there. */
function macroFingerprints(macros: Record<string, ManifestMacroParts>): Map<string, string> {
  const known = new Map<string, string>();
  const fingerprintOf = (id: string, path: Set<string>): string => {
    const cached = known.get(id);
    if (cached !== undefined) return cached;
    const macro = macros[id];
    if (!macro) return id;
    const inner = new Set(path).add(id);
    const called = (macro.depends_on?.macros ?? []).map((callee) => [
      callee,
      inner.has(callee) ? callee : fingerprintOf(callee, inner),
    ]);
    const fingerprint = hashOf(['macro', macro.macro_sql, sorted(called)]);
    // Only a fingerprint made without cutting a cycle short is the macro's for every caller.
    if (!called.some(([callee]) => inner.has(callee!))) known.set(id, fingerprint);
    return fingerprint;
  };
  const fingerprints = new Map<string, string>();
  for (const id of Object.keys(macros)) fingerprints.set(id, fingerprintOf(id, new Set()));
  return fingerprints;
}

function sorted(pairs: (string | undefined)[][]): (string | undefined)[][] {
  return [...pairs].sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
}

function hashOf(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}
