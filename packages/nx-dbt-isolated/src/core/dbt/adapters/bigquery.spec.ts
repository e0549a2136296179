import { bigqueryAdapter } from './bigquery';

describe('bigqueryAdapter', () => {
  it('isolates the dataset, or the schema when the output writes schema:', () => {
    expect(bigqueryAdapter.schemaField({ project: 'p', dataset: 'd' })).toBe('dataset');
    expect(bigqueryAdapter.schemaField({ project: 'p', schema: 'd' })).toBe('schema');
  });

  it('takes the GCP project as the database and the warehouse', () => {
    expect(bigqueryAdapter.database({ project: 'p', database: 'other' })).toBe('p');
    expect(bigqueryAdapter.database({ database: 'other' })).toBe('other');
    expect(bigqueryAdapter.location({ project: 'p', dataset: 'd' })).toBe('p/');
    expect(bigqueryAdapter.oneWriterAtATime).toBe(false);
  });

  it('keys the project, dataset and location', () => {
    expect(bigqueryAdapter.locationFields).toEqual(['project', 'database', 'schema', 'dataset', 'location']);
    expect(bigqueryAdapter.replaceCascades).toBe(false);
    expect(bigqueryAdapter.lockViews).toBeUndefined();
  });
});
