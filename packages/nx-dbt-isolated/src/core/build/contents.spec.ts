import { buildContents, contentsOf, isPlainFullBuild, partialSaid, writesNoRelation } from './contents';
import type { DbtSelection } from '../dbt/args';
import { buildRecord } from '../testing/build-record';

const partialBecause = (...args: Parameters<typeof buildContents>) => buildContents(...args).partialBecause;

describe('buildContents', () => {
  it('calls a plain build full, and names what narrows any other', () => {
    const fullRefreshWithVars: DbtSelection = { fullRefresh: true, vars: 'x: 1' };
    expect(partialBecause('build', fullRefreshWithVars, false)).toBeUndefined();
    expect(partialBecause('build', { select: ['customers'] }, false)).toBe('--select');
    expect(partialBecause('build', { exclude: ['customers'] }, false)).toBe('--exclude');
    expect(partialBecause('build', { selector: 'nightly' }, false)).toBe('--selector');
    expect(partialBecause('build', { extraArgs: ['--resource-type=model'] }, false)).toBe('--resource-type');
    expect(partialBecause('build', { extraArgs: ['--exclude-resource-type', 'model'] }, false)).toBe(
      '--exclude-resource-type',
    );
    expect(partialBecause('build', { extraArgs: ['--resource-types', 'seed'] }, false)).toBe('--resource-types');
    expect(partialBecause('build', { extraArgs: ['--empty'] }, false)).toBe('--empty');
    expect(partialBecause('build', { extraArgs: ['--sample=3 days'] }, false)).toBe('--sample');
    expect(partialBecause('build', {}, true)).toBe('--deferTo');
    expect(partialBecause('run', {}, false)).toBe('--command=run');
    expect(partialBecause('compile', {}, false)).toBe('--command=compile');
  });

  it('keeps vars and args apart: complete, but not the plain build of the commit', () => {
    expect(buildContents('build', {}, false)).toEqual({ complete: true, variedBy: [] });
    const varied = buildContents('build', { vars: '{"x": 1}', extraArgs: ['--fail-fast'] }, false);
    expect(varied).toEqual({ complete: true, variedBy: ['--vars', '--args'] });
    expect(isPlainFullBuild(varied)).toBe(false);
    expect(buildContents('build', { extraArgs: ['-s', 'orders'] }, false).variedBy).toEqual([]);
  });
});

describe('contentsOf', () => {
  it('reads the recorded contents first', () => {
    const recorded = { complete: false, partialBecause: '--select', variedBy: [] };
    expect(contentsOf(buildRecord({ selection: {}, contents: recorded }))).toBe(recorded);
  });

  it('derives the contents of an older record from its command, selection and deferral', () => {
    expect(contentsOf(buildRecord({ command: 'seed', selection: {} })).partialBecause).toBe('--command=seed');
    expect(contentsOf(buildRecord({ selection: { select: ['orders'] } })).partialBecause).toBe('--select');
    const slim = buildRecord({
      selection: {},
      deferredTo: { commit: 'f'.repeat(40), ref: 'v1', schema: 's_ffffffff' },
    });
    expect(contentsOf(slim).partialBecause).toBe('--deferTo');
  });

  it('takes a record older than selections as complete by its command, but never as the plain build', () => {
    const old = contentsOf(buildRecord({ selection: undefined }));
    expect(old).toEqual({ complete: true, variedBy: ['unrecorded'] });
    expect(isPlainFullBuild(old)).toBe(false);
  });
});

describe('what a partial build is said to be', () => {
  it('names the option and what the build holds', () => {
    const said = (flag: string) => partialSaid({ complete: false, partialBecause: flag, variedBy: [] });
    expect(said('--deferTo')).toBe('a slim build (--deferTo), which holds only what changed');
    expect(said('--command=compile')).toBe('a --command=compile build, which compiled the project and built nothing');
    expect(said('--command=seed')).toBe('a --command=seed build, which ran dbt seed only');
    expect(said('--select')).toBe('a --select build, which holds only part of the project');
    expect(said('--empty')).toBe('a --empty build, which holds the relations without all their rows');
  });

  it('knows that only compile writes no relation', () => {
    expect(writesNoRelation('compile')).toBe(true);
    expect(['build', 'run', 'seed', 'snapshot', 'test'].filter(writesNoRelation)).toEqual([]);
  });
});
