import { join } from 'node:path';
import { schemasInManifest, summarizeRunResults } from './artifacts';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';

describe('run artifacts', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  const write = (name: string, content: unknown) => {
    writeFiles(dir, { [name]: typeof content === 'string' ? content : JSON.stringify(content) });
    return join(dir, name);
  };

  describe('summarizeRunResults', () => {
    it('counts results by status and lists errors and failures with their messages', () => {
      const file = write('run_results.json', {
        results: [
          { unique_id: 'model.a.orders', status: 'success', message: 'SELECT 3' },
          { unique_id: 'model.a.customers', status: 'success', message: 'SELECT 2' },
          { unique_id: 'model.a.broken', status: 'error', message: 'Binder Error: column x' },
          { unique_id: 'test.a.not_null_orders_id', status: 'fail', message: null },
          { unique_id: 'test.a.unique_orders_id', status: 'pass' },
          { unique_id: 'model.a.after_broken', status: 'skipped' },
          { unique_id: 'test.a.warned', status: 'warn', message: 'Got 1 result' },
        ],
      });
      expect(summarizeRunResults(file)).toEqual({
        byStatus: { success: 2, error: 1, fail: 1, pass: 1, skipped: 1, warn: 1 },
        byType: { model: { success: 2, error: 1, skipped: 1 }, test: { fail: 1, pass: 1, warn: 1 } },
        failures: [
          { node: 'model.a.broken', message: 'Binder Error: column x' },
          { node: 'test.a.not_null_orders_id', message: '' },
        ],
      });
    });

    it('gives nothing for a missing or unreadable file', () => {
      expect(summarizeRunResults(join(dir, 'missing.json'))).toBeUndefined();
      expect(summarizeRunResults(write('broken.json', '{"results": ['))).toBeUndefined();
    });
  });

  describe('schemasInManifest', () => {
    it('lists the schemas of materialised models, seeds and snapshots, once each and sorted', () => {
      const file = write('manifest.json', {
        nodes: {
          'model.a.orders': { resource_type: 'model', schema: 'main_abcd1234', config: { materialized: 'table' } },
          'model.a.customers': { resource_type: 'model', schema: 'main_abcd1234', config: { materialized: 'view' } },
          'model.a.marts': { resource_type: 'model', schema: 'main_abcd1234_marts', config: { materialized: 'table' } },
          'model.a.helper': { resource_type: 'model', schema: 'ephemeral_only', config: { materialized: 'ephemeral' } },
          'seed.a.countries': { resource_type: 'seed', schema: 'main_abcd1234_seeds', config: {} },
          'snapshot.a.orders_snap': { resource_type: 'snapshot', schema: 'snapshots', config: {} },
          'test.a.not_null': { resource_type: 'test', schema: 'main_abcd1234_dbt_test__audit', config: {} },
          'analysis.a.report': { resource_type: 'analysis', schema: 'analysis_only', config: {} },
          'operation.a.hook': { resource_type: 'operation', schema: 'hook_only' },
        },
      });
      expect(schemasInManifest(file)).toEqual([
        'main_abcd1234',
        'main_abcd1234_marts',
        'main_abcd1234_seeds',
        'snapshots',
      ]);
    });

    it('adds the audit schema of tests that store their failures', () => {
      const file = write('manifest.json', {
        nodes: {
          'test.a.unique': {
            resource_type: 'test',
            schema: 'main_abcd1234_dbt_test__audit',
            config: { store_failures: true },
          },
          'test.a.accepted': {
            resource_type: 'test',
            schema: 'main_abcd1234_audit',
            config: { store_failures_as: 'view' },
          },
          'test.a.not_null': { resource_type: 'test', schema: 'not_stored', config: { store_failures: null } },
        },
      });
      expect(schemasInManifest(file)).toEqual(['main_abcd1234_audit', 'main_abcd1234_dbt_test__audit']);
    });

    it('adds the schemas of functions, which dbt 1.11 keeps apart from the nodes', () => {
      const file = write('manifest.json', {
        nodes: {},
        functions: {
          'function.a.is_positive_int': { resource_type: 'function', schema: 'main_abcd1234_udfs', config: {} },
        },
      });
      expect(schemasInManifest(file)).toEqual(['main_abcd1234_udfs']);
    });

    it('adds the audit schema of every test when dbt stores all failures', () => {
      const file = write('manifest.json', {
        nodes: { 'test.a.not_null': { resource_type: 'test', schema: 'dbt_test__audit', config: {} } },
      });
      expect(schemasInManifest(file)).toEqual([]);
      expect(schemasInManifest(file, { allTestFailures: true })).toEqual(['dbt_test__audit']);
    });

    it('gives no schemas for a missing or unreadable manifest', () => {
      expect(schemasInManifest(join(dir, 'missing.json'))).toEqual([]);
      expect(schemasInManifest(write('broken.json', 'not json'))).toEqual([]);
    });
  });
});
