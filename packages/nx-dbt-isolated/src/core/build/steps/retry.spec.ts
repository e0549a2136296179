import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../../testing/git-repo';
import { mergeRetriedResults, readRunResults } from './retry';

describe('mergeRetriedResults', () => {
  let target: string;
  beforeEach(() => (target = makeTempDir('retry-')));
  afterEach(() => removeDir(target));

  const write = (results: { unique_id: string; status: string }[], elapsed: number) =>
    writeFileSync(
      join(target, 'run_results.json'),
      JSON.stringify({ args: { which: 'x' }, results, elapsed_time: elapsed }),
    );

  it('keeps every node’s last result: the retried ones from the retry, the others from the build it retried', () => {
    write(
      [
        { unique_id: 'seed.a.raw', status: 'success' },
        { unique_id: 'model.a.flaky', status: 'error' },
        { unique_id: 'model.a.after', status: 'skipped' },
      ],
      10,
    );
    const before = readRunResults(target)!;
    write(
      [
        { unique_id: 'model.a.flaky', status: 'success' },
        { unique_id: 'model.a.after', status: 'success' },
      ],
      2,
    );
    mergeRetriedResults(target, before);
    const merged = JSON.parse(readFileSync(join(target, 'run_results.json'), 'utf8'));
    expect(merged.results).toEqual([
      { unique_id: 'seed.a.raw', status: 'success' },
      { unique_id: 'model.a.flaky', status: 'success' },
      { unique_id: 'model.a.after', status: 'success' },
    ]);
    expect(merged.elapsed_time).toBe(12);
  });

  it('changes nothing when the retry wrote no results', () => {
    write([{ unique_id: 'model.a.flaky', status: 'error' }], 1);
    const before = readRunResults(target)!;
    removeDir(target);
    expect(() => mergeRetriedResults(target, before)).not.toThrow();
  });
});
