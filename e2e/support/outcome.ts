import type { NxResult } from '../../fixture-workspace/workspace';

/**
 * An nx run as a test compares it: its exit code, with the end of its output when it failed, so
 * that a failed expectation shows why.
 */
export function outcome(result: NxResult): { code: number | null; output: string } {
  return { code: result.code, output: result.code === 0 ? '' : result.output.slice(-3000) };
}

export const SUCCEEDED = { code: 0, output: '' };
