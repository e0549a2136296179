import { readFileSync } from 'node:fs';
import type { ManifestNode } from '../dbt/artifacts';
import { UserError } from '../workspace/errors';
import type { ChangeKind, NodeChanges } from './types';

/** The parts of dbt's manifest.json that a diff reads. */
export interface DiffManifest {
  nodes: Record<string, ManifestNode>;
  child_map: Record<string, string[]>;
  parent_map: Record<string, string[]>;
}

export interface ManifestChanges extends NodeChanges {
  downstream: Record<string, string[]>;
}

export interface RelationRef {
  schema: string;
  identifier: string;
}

export interface ModelToCompare {
  node: string;
  name: string;
  change: ChangeKind;
  /** Absent when the node is added. */
  base?: RelationRef;
  /** Absent when the node is removed. */
  head?: RelationRef;
  /** The column of a `unique` test on the model, when it has one. */
  uniqueKey?: string;
}

const COMPARED_TYPES = new Set(['model', 'seed', 'snapshot']);

/** Reads the nodes and the graph of a manifest.json; throws naming the file when it cannot. */
export function readManifest(file: string): DiffManifest {
  let manifest: Partial<DiffManifest>;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the dbt manifest ${file}: ${(error as Error).message}`);
  }
  if (typeof manifest?.nodes !== 'object' || manifest.nodes === null) {
    throw new Error(`cannot read the dbt manifest ${file}: it has no nodes`);
  }
  return { nodes: manifest.nodes, child_map: manifest.child_map ?? {}, parent_map: manifest.parent_map ?? {} };
}

/** The models, seeds and snapshots added, removed and modified (by checksum), with what depends on them. */
export function compareManifests(base: DiffManifest, head: DiffManifest): ManifestChanges {
  const baseNodes = comparedNodes(base);
  const headNodes = comparedNodes(head);
  const added = [...headNodes.keys()].filter((id) => !baseNodes.has(id)).sort();
  const removed = [...baseNodes.keys()].filter((id) => !headNodes.has(id)).sort();
  const modified = [...headNodes.keys()]
    .filter((id) => baseNodes.has(id) && checksumOf(baseNodes.get(id)) !== checksumOf(headNodes.get(id)))
    .sort();
  const downstream: Record<string, string[]> = {};
  for (const id of [...added, ...removed, ...modified].sort()) {
    const children = descendants(removed.includes(id) ? base : head, id);
    if (children.length > 0) downstream[id] = children;
  }
  return { added, removed, modified, downstream };
}

/**
 * What to compare in the warehouse: the changed models, seeds and snapshots plus the `selected`
 * ones (by unique id or name), sorted by node id. Ephemeral models have no relation and are left out.
 */
export function modelsToCompare(
  base: DiffManifest,
  head: DiffManifest,
  changes: NodeChanges,
  selected: string[],
): ModelToCompare[] {
  const kinds = new Map<string, ChangeKind>();
  for (const id of selectedNodes(base, head, selected)) kinds.set(id, 'selected');
  for (const kind of ['added', 'removed', 'modified'] as const) {
    for (const id of changes[kind]) kinds.set(id, kind);
  }
  return [...kinds.keys()]
    .sort()
    .map((id) => toCompare(id, kinds.get(id) as ChangeKind, base, head))
    .filter((model): model is ModelToCompare => model !== undefined);
}

function toCompare(id: string, change: ChangeKind, base: DiffManifest, head: DiffManifest): ModelToCompare | undefined {
  const baseNode = change === 'added' ? undefined : base.nodes[id];
  const headNode = change === 'removed' ? undefined : head.nodes[id];
  const current = headNode ?? baseNode;
  if (!current || current.config?.materialized === 'ephemeral') return undefined;
  const uniqueKey = uniqueKeyOf(headNode ? head : base, id);
  return {
    node: id,
    name: current.name,
    change,
    ...(baseNode && { base: relationOf(baseNode) }),
    ...(headNode && { head: relationOf(headNode) }),
    ...(uniqueKey !== undefined && { uniqueKey }),
  };
}

function relationOf(node: ManifestNode): RelationRef {
  return { schema: node.schema, identifier: node.alias ?? node.name };
}

/** The column of a `unique` test attached to the node; the first by name when there are several. */
function uniqueKeyOf(manifest: DiffManifest, id: string): string | undefined {
  const columns = Object.values(manifest.nodes)
    .filter((node) => node.resource_type === 'test' && node.test_metadata?.name === 'unique')
    .filter((test) => test.attached_node === id)
    .map((test) => test.column_name ?? test.test_metadata?.kwargs?.column_name)
    .filter((column): column is string => typeof column === 'string' && column !== '');
  return columns.sort()[0];
}

function comparedNodes(manifest: DiffManifest): Map<string, ManifestNode> {
  return new Map(Object.entries(manifest.nodes).filter(([, node]) => COMPARED_TYPES.has(node.resource_type)));
}

function checksumOf(node: ManifestNode | undefined): string | undefined {
  return node?.checksum?.checksum;
}

/** Every node reachable through `child_map` from `id`, tests left out, sorted. */
function descendants(manifest: DiffManifest, id: string): string[] {
  const found = new Set<string>();
  const pending = [id];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    for (const child of manifest.child_map[current] ?? []) {
      if (isTest(child) || found.has(child) || child === id) continue;
      found.add(child);
      pending.push(child);
    }
  }
  return [...found].sort();
}

function isTest(id: string): boolean {
  return id.startsWith('test.') || id.startsWith('unit_test.');
}

/** The compared nodes of either manifest that `selected` names; throws for an entry that names none. */
function selectedNodes(base: DiffManifest, head: DiffManifest, selected: string[]): string[] {
  const nodes = [...comparedNodes(base).values(), ...comparedNodes(head).values()];
  const ids = new Set<string>();
  for (const entry of selected) {
    const matches = nodes.filter((node) => node.unique_id === entry || node.name === entry);
    if (matches.length === 0) throw new UserError(noMatchMessage(entry, nodes));
    for (const node of matches) ids.add(node.unique_id);
  }
  return [...ids];
}

function noMatchMessage(entry: string, nodes: ManifestNode[]): string {
  const close = closeNames(
    entry,
    nodes.map((node) => node.name),
  );
  const hint = close.length > 0 ? ` (did you mean ${close.join(', ')}?)` : '';
  return `--select ${entry} names no model, seed or snapshot of either build${hint}.`;
}

/** Up to three names within a few edits of `entry`, closest first. */
function closeNames(entry: string, names: string[]): string[] {
  const allowed = Math.max(2, Math.floor(entry.length / 4));
  return [...new Set(names)]
    .map((name) => ({ name, distance: editDistance(entry.toLowerCase(), name.toLowerCase()) }))
    .filter(({ distance }) => distance <= allowed)
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, 3)
    .map(({ name }) => name);
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length];
}
