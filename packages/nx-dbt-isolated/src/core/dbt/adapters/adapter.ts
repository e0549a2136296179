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
  /** Builds claim schemas and take advisory locks, and may run as their own role (warehouse/claims.ts, strict-isolation.ts). */
  rolesAndClaims: boolean;
}
