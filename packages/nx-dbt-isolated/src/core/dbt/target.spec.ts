import { askedDbtTarget, dbtTargetFor } from './target';

describe('the dbt target precedence', () => {
  it('takes the command line over the option, DBT_TARGET after both, and leaves the rest to the profile', () => {
    expect(dbtTargetFor(askedDbtTarget('ci', 'prod'), { DBT_TARGET: 'qa' })).toBe('ci');
    expect(dbtTargetFor(askedDbtTarget(undefined, 'prod'), { DBT_TARGET: 'qa' })).toBe('prod');
    expect(dbtTargetFor(askedDbtTarget(undefined, undefined), { DBT_TARGET: 'qa' })).toBe('qa');
    expect(dbtTargetFor(askedDbtTarget(undefined, undefined), {})).toBeUndefined();
  });

  it('reads an empty value as none, as dbt reads an empty DBT_TARGET', () => {
    expect(askedDbtTarget('', 'prod')).toBe('prod');
    expect(askedDbtTarget('', '')).toBeUndefined();
    expect(dbtTargetFor('', { DBT_TARGET: '' })).toBeUndefined();
    expect(dbtTargetFor(undefined, { DBT_TARGET: '' })).toBeUndefined();
  });
});
