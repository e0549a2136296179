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

  it("keys any field through which an adapter may say where it is, and assumes no replace's cascade", () => {
    expect(genericAdapter.locationFields).toEqual(expect.arrayContaining(['host', 'account', 'database', 'http_path']));
    expect(genericAdapter.locationFields).not.toContain('password');
    expect(genericAdapter.fileField).toBeUndefined();
    expect(genericAdapter.replaceCascades).toBe(false);
    expect(genericAdapter.lockViews).toBeUndefined();
  });
});
