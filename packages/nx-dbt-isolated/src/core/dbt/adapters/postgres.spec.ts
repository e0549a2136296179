import { postgresAdapter } from './postgres';

describe('postgresAdapter', () => {
  const output = { type: 'postgres', host: 'db', port: 5432, dbname: 'warehouse', schema: 'dev' };

  it('isolates the schema, locates the warehouse by host, port and dbname, and claims schemas', () => {
    expect(postgresAdapter.schemaField(output)).toBe('schema');
    expect(postgresAdapter.defaultSchema).toBeUndefined();
    expect(postgresAdapter.location(output)).toBe('db:5432/warehouse');
    expect(postgresAdapter.database(output)).toBe('warehouse');
    expect(postgresAdapter.oneWriterAtATime).toBe(false);
    expect(postgresAdapter.rolesAndClaims).toBe(true);
  });

  it('keys host, port and database, cascades a replace, and takes the views a promotion replaces at once', () => {
    expect(postgresAdapter.locationFields).toEqual(['host', 'port', 'dbname', 'database', 'schema']);
    expect(postgresAdapter.fileField).toBeUndefined();
    expect(postgresAdapter.replaceCascades).toBe(true);
    expect(postgresAdapter.lockViews?.(['"a"."v"', '"b"."w"'])).toMatch(
      /lock table "a"\."v", "b"\."w" in access exclusive mode nowait/,
    );
  });
});
