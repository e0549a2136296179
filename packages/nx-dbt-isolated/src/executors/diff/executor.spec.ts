import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { logger } from '../logger';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutorContext } from '@nx/devkit';
import { diffCommits } from '../../core/diff/diff-commits';
import type { DiffReport } from '../../core/diff/types';
import executor from './executor';

jest.mock('../../core/diff/diff-commits');
const diff = jest.mocked(diffCommits);

const report: DiffReport = {
  project: 'analytics',
  target: 'dev',
  base: { ref: 'main', commit: 'a'.repeat(40), schema: 'analytics_aaaaaaaa' },
  head: { ref: 'HEAD', commit: 'b'.repeat(40), schema: 'analytics_bbbbbbbb' },
  nodes: { added: [], removed: [], modified: [] },
  downstream: {},
  data: [],
};

describe('diff executor', () => {
  let root: string;
  let context: ExecutorContext;
  let stdout: jest.SpyInstance;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'diff-executor-'));
    context = {
      root,
      projectName: 'analytics',
      projectsConfigurations: { version: 2, projects: { analytics: { root: 'analytics' } } },
    } as unknown as ExecutorContext;
    const files = {
      json: join(root, '.dot/diffs/analytics/a..b.json'),
      markdown: join(root, '.dot/diffs/analytics/a..b.md'),
    };
    diff.mockResolvedValue({ report, files });
    stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    jest.spyOn(logger, 'info').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    diff.mockReset();
    delete process.env.NX_BASE;
    delete process.env.NX_HEAD;
    rmSync(root, { recursive: true, force: true });
  });

  it('compares main with HEAD by default, or NX_BASE with NX_HEAD as nx affected sets them', async () => {
    await executor({}, context);
    expect(diff.mock.calls[0][0]).toMatchObject({
      base: 'main',
      head: 'HEAD',
      select: [],
      targetName: 'isolated-build',
    });
    process.env.NX_BASE = 'origin/main';
    process.env.NX_HEAD = 'feature';
    await executor({ select: 'orders' }, context);
    expect(diff.mock.calls[1][0]).toMatchObject({ base: 'origin/main', head: 'feature', select: ['orders'] });
    await executor({ base: 1234567, head: 'v2' }, context);
    expect(diff.mock.calls[2][0]).toMatchObject({ base: '1234567', head: 'v2' });
  });

  it('prints nothing but the JSON report on stdout with --format=json, and writes it to --outputFile', async () => {
    const result = await executor({ format: 'json', outputFile: 'out/diff.json' }, context);
    expect(result).toEqual({ success: true });
    const printed = stdout.mock.calls.map(([chunk]) => String(chunk)).join('');
    expect(JSON.parse(printed)).toEqual(report);
    expect(JSON.parse(readFileSync(join(root, 'out/diff.json'), 'utf8'))).toEqual(report);
    expect(logger.info).not.toHaveBeenCalled();
  });

  it('writes --outputFile given as an absolute path there, not under the workspace', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'nx-dbt-diff-output-'));
    try {
      expect(await executor({ format: 'json', outputFile: join(elsewhere, 'diff.json') }, context)).toEqual({
        success: true,
      });
      expect(JSON.parse(readFileSync(join(elsewhere, 'diff.json'), 'utf8'))).toEqual(report);
      expect(existsSync(join(root, elsewhere))).toBe(false);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
