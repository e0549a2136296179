/** One target of a profile, as profiles.yml writes it. */
export type ProfileOutput = Record<string, unknown>;

/** What the plugin knows of one dbt adapter (a profile output's `type:`); index.ts picks it. */
export interface DbtAdapter {
  /** The field of the output that holds the schema, which an isolated build renames per commit. */
  schemaField(output: ProfileOutput): string;
  /** The schema dbt writes to when the output names none; undefined when it must name one. */
  defaultSchema?: string;
  /** Where the warehouse is, as one text: two builds with the same one share a warehouse. */
  location(output: ProfileOutput): string;
  /** The database dbt names in the manifest, as the output configures it (templates unrendered). */
  database(output: ProfileOutput): unknown;
  /** One process at a time may write (a DuckDB file): writers take turns (warehouse/duckdb-lock.ts). */
  oneWriterAtATime: boolean;
  /**
   * Besides `type`, the fields of an output that say where its relations live, in the order the
   * cache key lists them (cache/warehouse-token.ts); credentials and tuning are left out.
   */
  locationFields: readonly string[];
  /** The field naming a local database file, keyed by its path in the workspace and a token (cache/warehouse-token.ts). */
  fileField?: string;
  /**
   * dbt replaces a relation by dropping the old one with cascade, which takes the views reading
   * it (promoted views among them) along: a rebuild of a promoted build keeps them (promote/rebuild.ts).
   */
  replaceCascades: boolean;
  /**
   * One statement taking every given view (quoted names) before a promotion touches any, where
   * taking them one by one could deadlock with a reader's query (promote/plan.ts).
   */
  lockViews?(views: string[]): string;
  /** Builds claim schemas and take advisory locks, and may run as their own role (warehouse/claims.ts, strict-isolation.ts). */
  rolesAndClaims: boolean;
}
