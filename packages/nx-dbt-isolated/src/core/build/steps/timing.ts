import type { Reporter } from '../../workspace/reporter';

/**
 * A phase whose own output (dbt's, git's, a wait) comes between its start and its end is
 * announced as it starts, `• dbt deps …`, and ends with its time, `• dbt deps (2.8s)`; a quick
 * silent one has the end line only.
 */
export const phaseStarting = (phase: string) => `• ${phase} …`;
export const phaseEnded = (phase: string, started: number) => `• ${phase} (${secondsSince(started)})`;

/** Runs one step and reports how long it took: `• checkout 1a2b3c4d5e6f (1.2s)`, announced first when asked. */
export async function timed<T>(
  reporter: Reporter,
  phase: string,
  work: () => Promise<T>,
  { announce = false } = {},
): Promise<T> {
  const started = Date.now();
  if (announce) reporter.info(phaseStarting(phase));
  const result = await work();
  reporter.info(phaseEnded(phase, started));
  return result;
}

export function secondsSince(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)}s`;
}
