import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../../testing/git-repo';
import { mergeRetriedResults, readRunResults } from './retry';

describe('mergeRetriedResults', () => {
  let target: string;
  beforeEach(() => (target = makeTempDir('retry-')));
  afterEach(() => removeDir(target));

  const write = (invocation: string, results: { unique_id: string; status: string }[], elapsed: number) =>
    writeFileSync(
      join(target, 'run_results.json'),
      JSON.stringify({ metadata: { invocation_id: invocation }, results, elapsed_time: elapsed }),
    );

  it('keeps every node’s last result: the retried ones from the retry, the others from the build it retried', () => {
    write(
      'first',
      [
        { unique_id: 'seed.a.raw', status: 'success' },
        { unique_id: 'model.a.flaky', status: 'error' },
        { unique_id: 'model.a.after', status: 'skipped' },
      ],
      10,
    );
    const before = readRunResults(target)!;
    write(
      'retry',
      [
        { unique_id: 'model.a.flaky', status: 'success' },
        { unique_id: 'model.a.after', status: 'success' },
      ],
      2,
    );
    mergeRetriedResults(target, before);
    const merged = JSON.parse(readFileSync(join(target, 'run_results.json'), 'utf8'));
    expect(merged.metadata).toEqual({ invocation_id: 'retry' });
    expect(merged.results).toEqual([
      { unique_id: 'seed.a.raw', status: 'success' },
      { unique_id: 'model.a.flaky', status: 'success' },
      { unique_id: 'model.a.after', status: 'success' },
    ]);
    expect(merged.elapsed_time).toBe(12);
  });

  it('changes nothing when dbt stopped before writing results of its own', () => {
    write('first', [{ unique_id: 'model.a.flaky', status: 'error' }], 1);
    const before = readRunResults(target)!;
    const written = readFileSync(join(target, 'run_results.json'), 'utf8');
    mergeRetriedResults(target, before);
    expect(readFileSync(join(target, 'run_results.json'), 'utf8')).toBe(written);
    removeDir(target);
    expect(() => mergeRetriedResults(target, before)).not.toThrow();
  });
});
