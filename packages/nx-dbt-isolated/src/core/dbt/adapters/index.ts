import type { DbtAdapter } from './adapter';
import { bigqueryAdapter } from './bigquery';
import { duckdbAdapter } from './duckdb';
import { genericAdapter } from './generic';
import { postgresAdapter } from './postgres';

export type { DbtAdapter, ProfileOutput } from './adapter';

const ADAPTERS = new Map<string, DbtAdapter>([
  ['bigquery', bigqueryAdapter],
  ['duckdb', duckdbAdapter],
  ['postgres', postgresAdapter],
]);

/** The adapter of a profile output's `type:`; the generic one for a type without its own module. */
export function adapterFor(type: string): DbtAdapter {
  return ADAPTERS.get(type) ?? genericAdapter;
}
