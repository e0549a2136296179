/** The part of dbt's manifest.json that says which nodes use which. */
export interface ChildMap {
  child_map: Record<string, string[]>;
}

/** `node` and every node downstream of it in the manifest's child_map (tests included), sorted. */
export function withDescendants(manifest: ChildMap, node: string): string[] {
  const found = new Set<string>([node]);
  const queue = [node];
  while (queue.length > 0) {
    for (const child of manifest.child_map[queue.shift()!] ?? []) {
      if (!found.has(child)) {
        found.add(child);
        queue.push(child);
      }
    }
  }
  return [...found].sort();
}
