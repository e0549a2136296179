import type { DbtAdapter } from './adapter';
import { genericAdapter } from './generic';

/** dbt-bigquery: a schema is a `dataset:` (or `schema:`), and the database is the GCP project. */
export const bigqueryAdapter: DbtAdapter = {
  ...genericAdapter,
  schemaField: (output) => ('dataset' in output ? 'dataset' : 'schema'),
  database: (output) => output.project ?? output.database,
  locationFields: ['project', 'database', 'schema', 'dataset', 'location'],
};
