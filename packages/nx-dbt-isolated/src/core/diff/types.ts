/** What `diff` writes to `.dot/diffs/<project>/<baseId>..<headId>.json` and prints with `--format=json`. */
export interface DiffReport {
  project: string;
  /** The dbt target both builds were made for. */
  target: string;
  base: BuildSide;
  head: BuildSide;
  nodes: NodeChanges;
  /** For each changed node that has any: its transitive children that are not tests, sorted. */
  downstream: Record<string, string[]>;
  /** One entry per compared model, seed or snapshot, sorted by node id. */
  data: DataDiff[];
}

export interface BuildSide {
  ref: string;
  commit: string;
  /** The isolated schema the build wrote into. */
  schema: string;
}

/** Models, seeds and snapshots, by unique id, sorted. */
export interface NodeChanges {
  added: string[];
  removed: string[];
  modified: string[];
}

export type ChangeKind = 'added' | 'removed' | 'modified' | 'selected';

export interface DataDiff {
  node: string;
  name: string;
  change: ChangeKind;
  /** Null when the node is added. */
  base: RelationSummary | null;
  /** Null when the node is removed. */
  head: RelationSummary | null;
  columns: ColumnChanges;
  /** Null when only one side exists. */
  comparison: Comparison | null;
  /** Per column both sides have; empty when only one side exists. */
  valueDifferences: Record<string, number>;
}

export interface RelationSummary {
  /** Quoted `"schema"."identifier"`. */
  relation: string;
  rows: number;
}

/** For an added node every column is added; for a removed one every column is removed. */
export interface ColumnChanges {
  added: ColumnType[];
  removed: ColumnType[];
  typeChanged: TypeChange[];
}

export interface ColumnType {
  name: string;
  type: string;
}

export interface TypeChange {
  name: string;
  base: string;
  head: string;
}

export type Comparison = KeyedComparison | MultisetComparison;

/** Rows paired by a unique, never null key column. */
export interface KeyedComparison extends RowCounts {
  mode: 'key';
  key: string;
}

/** Whole rows over the common columns, counted with multiplicity, nulls equal to nulls. */
export interface MultisetComparison extends RowCounts {
  mode: 'multiset';
  /** Why a key the model has could not be used. */
  note?: string;
}

export interface RowCounts {
  matched: number;
  onlyInBase: number;
  onlyInHead: number;
}
