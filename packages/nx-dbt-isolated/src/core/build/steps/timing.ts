import type { Reporter } from '../../workspace/reporter';

/** Runs one step and reports it with how long it took: `• checkout 1a2b3c4d5e6f (1.2s)`. */
export async function timed<T>(reporter: Reporter, phase: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await work();
  reporter.info(`• ${phase} (${secondsSince(started)})`);
  return result;
}

export function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)}s`;
}
