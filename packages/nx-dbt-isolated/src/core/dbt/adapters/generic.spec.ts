import { genericAdapter } from './generic';

describe('genericAdapter', () => {
  it('isolates schema:, and locates the warehouse by host (or account) and database', () => {
    const output = { type: 'snowflake', account: 'acme', database: 'ANALYTICS', schema: 'dev' };
    expect(genericAdapter.schemaField(output)).toBe('schema');
    expect(genericAdapter.defaultSchema).toBeUndefined();
    expect(genericAdapter.location(output)).toBe('acme/ANALYTICS');
    expect(genericAdapter.database(output)).toBe('ANALYTICS');
    expect(genericAdapter.oneWriterAtATime).toBe(false);
    expect(genericAdapter.rolesAndClaims).toBe(false);
  });
});
