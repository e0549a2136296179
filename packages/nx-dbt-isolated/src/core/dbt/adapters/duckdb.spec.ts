import { duckdbAdapter } from './duckdb';

describe('duckdbAdapter', () => {
  it('writes to schema main unless told, and locates the warehouse by its file', () => {
    expect(duckdbAdapter.schemaField({ path: '/w/warehouse.duckdb' })).toBe('schema');
    expect(duckdbAdapter.defaultSchema).toBe('main');
    expect(duckdbAdapter.location({ path: '/w/warehouse.duckdb', schema: 'x' })).toBe('/w/warehouse.duckdb');
    expect(duckdbAdapter.oneWriterAtATime).toBe(true);
    expect(duckdbAdapter.rolesAndClaims).toBe(false);
  });

  it('keys the warehouse by its file, and keeps views through a replace without locking them', () => {
    expect(duckdbAdapter.locationFields).toEqual(['database', 'schema', 'path']);
    expect(duckdbAdapter.fileField).toBe('path');
    expect(duckdbAdapter.replaceCascades).toBe(false);
    expect(duckdbAdapter.lockViews).toBeUndefined();
  });

  it('names the database after the file, unless the output names one', () => {
    expect(duckdbAdapter.database({ path: '/w/warehouse.duckdb' })).toBe('warehouse');
    expect(duckdbAdapter.database({ path: ':memory:' })).toBe('memory');
    expect(duckdbAdapter.database({ path: 'relative.duckdb' })).toBeUndefined();
    expect(duckdbAdapter.database({ path: '/w/warehouse.duckdb', database: 'named' })).toBe('named');
  });
});
