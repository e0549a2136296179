import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSummary } from '../../core/build/summary';
import { buildPaths } from '../../core/workspace/dot-layout';
import { buildRecord, builtWithFailures } from '../../core/testing/build-record';
import { makeTempDir, removeDir } from '../../core/testing/git-repo';
import { summaryLines } from './format';

describe('build summary lines', () => {
  const paths = buildPaths('/ws', 'abcd1234', 'analytics', 'dev');
  const record = builtWithFailures();

  it('prints the summary as aligned rows, naming each failure by its first line', () => {
    expect(summaryLines(buildSummary('/ws', paths, record))).toEqual([
      'Isolated build succeeded',
      `  commit    ${record.commit} (ref main)`,
      '  schemas   main_abcd1234, main_abcd1234_finance',
      '  target    dev (duckdb /ws/warehouse.duckdb)',
      '  contents  the whole project',
      '  results   models 7 passed, 1 failed, 2 skipped; tests 8 passed, 1 failed, 1 warned; seeds 3 passed',
      '  duration  12.5s',
      '  artifacts .dot/abcd1234/analytics/dev/target',
      '  failed    model.analytics.broken: Binder Error: column x',
      '  failed    test.analytics.unique_orders_id: Got 2 results',
    ]);
  });

  it('heads a failed build with its error, and says what a slim build deferred to', () => {
    const slim = buildRecord({
      status: 'failed',
      error: 'dbt build exited with 1',
      deferredTo: { commit: 'f'.repeat(40), ref: 'main', schema: 'main_ffffffff' },
    });
    const lines = summaryLines(buildSummary('/ws', paths, slim));
    expect(lines[0]).toBe('Isolated build failed: dbt build exited with 1');
    expect(lines).toContain('  deferred  to main_ffffffff (main, ffffffffffff)');
    expect(lines).toContain('  results   none');
  });

  it('offers a build whose nodes failed the command that runs only those again, and a slim build none', () => {
    const failed = { ...record, status: 'failed' as const, error: 'dbt build exited with 1' };
    const lines = summaryLines(buildSummary('/ws', paths, failed), 'ib');
    expect(lines.at(-1)).toBe(
      '  retry     nx run analytics:ib --ref=main --target=dev --command=retry (the failed and skipped nodes only)',
    );
    const slim = { ...failed, deferredTo: { commit: 'f'.repeat(40), ref: 'main', schema: 'main_ffffffff' } };
    expect(summaryLines(buildSummary('/ws', paths, slim)).filter((line) => line.includes('retry'))).toEqual([]);
    expect(summaryLines(buildSummary('/ws', paths, record)).filter((line) => line.includes('retry'))).toEqual([]);
  });

  describe('a partial build says what ran in words', () => {
    let root: string;
    let where: ReturnType<typeof buildPaths>;
    const ran = (byType: Record<string, Record<string, number>>) => ({ byStatus: {}, byType, failures: [] });
    const rowsOf = (overrides: Parameters<typeof buildRecord>[0]) =>
      summaryLines(buildSummary(root, where, buildRecord({ selection: {}, ...overrides }))).filter((line) =>
        /^ {2}(contents|results) /.test(line),
      );
    beforeEach(() => {
      root = makeTempDir();
      where = buildPaths(root, 'abcd1234', 'analytics', 'dev');
      const nodes = Object.fromEntries(
        [...Array(7).keys()]
          .map((n) => [`model.analytics.m${n}`, { resource_type: 'model' }])
          .concat([...Array(3).keys()].map((n) => [`seed.analytics.s${n}`, { resource_type: 'seed' }])),
      );
      mkdirSync(where.targetPath, { recursive: true });
      writeFileSync(join(where.targetPath, 'manifest.json'), JSON.stringify({ nodes }));
    });
    afterEach(() => removeDir(root));

    it('a compile: compiled, not built, and no passed counts', () => {
      expect(rowsOf({ command: 'compile', results: ran({ model: { success: 7 }, test: { success: 24 } }) })).toEqual([
        '  contents  compiled, not built (--command=compile)',
        '  results   7 models, 24 tests compiled, none run',
      ]);
    });

    it('a --select or --command build: how many of the project it built', () => {
      expect(rowsOf({ selection: { select: ['m0+'] }, results: ran({ model: { success: 3 } }) })).toEqual([
        '  contents  3 of 7 models (--select)',
        '  results   models 3 passed',
      ]);
      expect(rowsOf({ command: 'seed', results: ran({ seed: { success: 3 } }) })[0]).toBe(
        '  contents  3 of 3 seeds (--command=seed)',
      );
    });

    it('a slim build: what it built and what it read from its base', () => {
      const deferredTo = { commit: 'f'.repeat(40), ref: 'v1', schema: 'main_ffffffff' };
      expect(rowsOf({ deferredTo, results: ran({ model: { success: 2 } }) })[0]).toBe(
        '  contents  slim: 2 models built, 5 read from main_ffffffff',
      );
    });
  });
});
