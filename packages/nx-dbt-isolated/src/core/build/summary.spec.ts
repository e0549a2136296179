import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSummary, writeBuildSummary } from './summary';
import { buildPaths } from '../workspace/dot-layout';
import { builtWithFailures } from '../testing/build-record';
import { makeTempDir, removeDir } from '../testing/git-repo';

describe('build summary', () => {
  const paths = buildPaths('/ws', 'abcd1234', 'analytics', 'dev');
  const record = builtWithFailures();

  it('counts passed, failed, skipped and warned nodes per resource type, with the duration and where artifacts are', () => {
    expect(buildSummary('/ws', paths, record)).toMatchObject({
      commit: record.commit,
      dbtTarget: 'dev',
      schemas: ['main_abcd1234', 'main_abcd1234_finance'],
      seconds: 12.5,
      nodes: {
        model: { passed: 7, failed: 1, skipped: 2, warned: 0 },
        test: { passed: 8, failed: 1, skipped: 0, warned: 1 },
        seed: { passed: 3, failed: 0, skipped: 0, warned: 0 },
      },
      artifacts: '.dot/abcd1234/analytics/dev/target',
    });
  });

  it('writes the summary as JSON beside the target folder', () => {
    const root = makeTempDir();
    try {
      const where = buildPaths(root, 'abcd1234', 'analytics', 'dev');
      const summary = buildSummary(root, where, record);
      writeBuildSummary(where, summary);
      expect(JSON.parse(readFileSync(join(where.buildDir, 'summary.json'), 'utf8'))).toEqual(summary);
    } finally {
      removeDir(root);
    }
  });
});
