import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { readdirOrEmpty } from './files';
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

/** Runs `work` holding every lock of `names`, taken in sorted order so that two callers never deadlock. */
export async function withLocks<T>(
  dir: string,
  names: string[],
  work: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const [first, ...rest] = [...new Set(names)].sort();
  if (first === undefined) return work();
  return withLock(dir, first, () => withLocks(dir, rest, work, options), options);
}

const LEASE_SUFFIX = '.lease';

/**
 * Takes a lease in `dir` for `holder` and returns its release. Leases never exclude each other:
 * any number may be held at once. They tell another process (clean) what is in use, and one
 * left by a killed process goes stale like a lock.
 */
export async function holdLease(dir: string, holder: string): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  const file = join(
    dir,
    `${encodeURIComponent(holder).replace(/\./g, '%2E')}.${process.pid}.${randomUUID()}${LEASE_SUFFIX}`,
  );
  const release = await lockfile.lock(file, {
    realpath: false,
    stale: STALE_AFTER_MS,
    onCompromised: () => undefined,
  });
  return () => release().catch(() => undefined);
}

/** The holders of the leases in `dir` that are still held by a live process. */
export async function liveLeaseHolders(dir: string): Promise<string[]> {
  const holders: string[] = [];
  for (const entry of readdirOrEmpty(dir)) {
    if (!entry.endsWith(`${LEASE_SUFFIX}.lock`)) continue;
    const file = join(dir, entry.slice(0, -'.lock'.length));
    if (await lockfile.check(file, { realpath: false, stale: STALE_AFTER_MS })) {
      holders.push(decodeURIComponent(entry.split('.')[0]));
    }
  }
  return holders;
}

/** A file-system-safe lock name: readable prefix plus a hash of the full key. */
export function safeLockName(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-40);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}
