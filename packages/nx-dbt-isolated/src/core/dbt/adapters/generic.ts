import type { DbtAdapter, ProfileOutput } from './adapter';

/** The fields through which the common adapters name a host and a database. */
export function hostAndDatabase(output: ProfileOutput): string {
  const host = output.host ?? output.account ?? output.project ?? output.server ?? '';
  const database = output.dbname ?? output.database ?? output.catalog ?? '';
  const port = output.port === undefined ? '' : `:${String(output.port)}`;
  return `${String(host)}${port}/${String(database)}`;
}

/** Any adapter the plugin has no module for: a `schema:` and a host and database. */
export const genericAdapter: DbtAdapter = {
  schemaField: () => 'schema',
  location: hostAndDatabase,
  database: (output) => output.database ?? output.dbname ?? output.catalog,
  // Any of them may say where an unknown adapter's relations live.
  locationFields: [
    'host',
    'port',
    'server',
    'account',
    'project',
    'dbname',
    'database',
    'catalog',
    'schema',
    'dataset',
    'path',
    'http_path',
    'location',
  ],
  replaceCascades: false,
  oneWriterAtATime: false,
  rolesAndClaims: false,
};
