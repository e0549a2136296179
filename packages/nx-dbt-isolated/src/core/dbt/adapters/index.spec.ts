import { adapterFor } from '.';
import { bigqueryAdapter } from './bigquery';
import { duckdbAdapter } from './duckdb';
import { genericAdapter } from './generic';
import { postgresAdapter } from './postgres';

describe('adapterFor', () => {
  it("picks the adapter module by the output's type, the generic one for any other", () => {
    expect(adapterFor('duckdb')).toBe(duckdbAdapter);
    expect(adapterFor('postgres')).toBe(postgresAdapter);
    expect(adapterFor('bigquery')).toBe(bigqueryAdapter);
    expect(adapterFor('snowflake')).toBe(genericAdapter);
    expect(adapterFor('constructor')).toBe(genericAdapter);
  });
});
