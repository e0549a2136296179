import { carriedReads } from './records';
import { buildRecord } from '../testing/build-record';

describe('carriedReads', () => {
  const v1 = { commit: 'a'.repeat(40), ref: 'v1', schema: 'analytics_aaaaaaaa' };
  const v2 = { commit: 'b'.repeat(40), ref: 'v2', schema: 'analytics_bbbbbbbb' };

  it("carries a replaced slim build's base, and what that build carried, each once", () => {
    expect(carriedReads(buildRecord({ deferredTo: v1 }))).toEqual([v1]);
    expect(carriedReads(buildRecord({ deferredTo: v1, readsFrom: [v2, v1] }))).toEqual([v2, v1]);
  });

  it('carries nothing from no record, or from one that read no other build', () => {
    expect(carriedReads(undefined)).toBeUndefined();
    expect(carriedReads(buildRecord())).toBeUndefined();
  });
});
