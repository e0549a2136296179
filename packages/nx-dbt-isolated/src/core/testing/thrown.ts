/** The error `work` throws; fails the test when it throws nothing. */
export function thrown(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}
