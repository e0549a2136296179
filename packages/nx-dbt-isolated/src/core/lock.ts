import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import lockfile from 'proper-lockfile';

export interface LockOptions {
  /** Told once when the lock is held by another process and this one starts to wait. */
  onWait?: () => void;
  /** How long to wait for the lock before giving up. */
  timeoutMs?: number;
}

/** A lock held by a process that died is taken over once it has not been refreshed for this long. */
const STALE_AFTER_MS = 20_000;
const POLL_MS = 500;

/**
 * Runs `work` while holding an inter-process lock named `name` in `dir`. The lock is a
 * directory made atomically by proper-lockfile and refreshed while held, so one left by a
 * killed process goes stale and is taken over instead of blocking forever.
 */
export async function withLock<T>(
  dir: string,
  name: string,
  work: () => Promise<T>,
  { onWait, timeoutMs = 60 * 60_000 }: LockOptions = {},
): Promise<T> {
  mkdirSync(dir, { recursive: true });
  const target = join(dir, safeLockName(name));
  const options = {
    realpath: false,
    stale: STALE_AFTER_MS,
    onCompromised: (error: Error) =>
      console.warn(`nx-dbt-isolated: lock ${name} was taken over by another process: ${error.message}`),
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, { ...options, retries: 0 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    onWait?.();
    const retries = Math.ceil(timeoutMs / POLL_MS);
    release = await lockfile.lock(target, {
      ...options,
      retries: { retries, factor: 1, minTimeout: POLL_MS, maxTimeout: POLL_MS },
    });
  }
  try {
    return await work();
  } finally {
    await release().catch(() => undefined);
  }
}

/** A file-system-safe lock name: readable prefix plus a hash of the full key. */
export function safeLockName(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-40);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}
