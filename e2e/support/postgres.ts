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

export interface PostgresReader<Row> {
  /** Every answer in order, or the error a read got instead. */
  seen: (Row | { error: string })[];
  /** Resolves once the reader has read once (or failed to connect: then `stop` rejects). */
  started: Promise<void>;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL session that runs `sql` over and over until stopped, `pauseMs` apart: what a
 * dashboard reading a promoted schema sees while the plugin switches or rebuilds it.
 */
export function startPostgresReader<Row extends object>(sql: string, pauseMs = 0): PostgresReader<Row> {
  const seen: (Row | { error: string })[] = [];
  let stopping = false;
  let firstRead: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (firstRead = resolve));
  const client = new Client(POSTGRES);
  const done = (async () => {
    await client.connect();
    try {
      while (!stopping) {
        try {
          seen.push((await client.query<Row>(sql)).rows[0]);
        } catch (error) {
          seen.push({ error: (error as Error).message });
        }
        firstRead();
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    } finally {
      firstRead();
      await client.end();
    }
  })();
  return {
    seen,
    started,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}
