import { Client } from 'pg';

/** The test PostgreSQL server that scripts/ensure-postgres.sh provides. */
export const POSTGRES = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

export async function withPostgres<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(POSTGRES);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Schemas whose names start with `prefix`, sorted. */
export function schemasStartingWith(prefix: string): Promise<string[]> {
  return withPostgres(async (client) => {
    const result = await client.query<{ name: string }>(
      'select schema_name as name from information_schema.schemata where starts_with(schema_name, $1) order by 1',
      [prefix],
    );
    return result.rows.map((row) => row.name);
  });
}

export function dropSchemasStartingWith(prefix: string): Promise<void> {
  return withPostgres(async (client) => {
    for (const schema of await schemasStartingWith(prefix)) {
      await client.query(`drop schema "${schema.replace(/"/g, '""')}" cascade`);
    }
  });
}
