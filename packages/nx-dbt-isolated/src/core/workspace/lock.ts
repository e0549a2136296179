import {
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { BuildInterrupted, UserError } from './errors';
import { stopRequested } from './stop';
import { readdirOrEmpty } from './files';

/** The process a lock or lease belongs to, as written in it (see ADR 19). */
export interface LockOwner {
  pid: number;
  host: string;
  /** When the process started (clock ticks since boot, /proc/<pid>/stat), so a reused pid is not taken for it. */
  startTime?: string;
  /** Tells this hold apart from every other, the same process's included. */
  token: string;
}

/** Who holds a lock another process waits for. */
export interface LockHolder {
  pid: number;
  host: string;
  /** Stopped by a signal (Ctrl-Z, SIGSTOP): it keeps its locks until it is resumed or dies. */
  stopped: boolean;
}

export interface LockOptions {
  /** Told once when the lock is held by another process and this one starts to wait. */
  onWait?: (holder: LockHolder | undefined) => void;
  /** How long to wait for the lock before giving up. */
  timeoutMs?: number;
  /** Checked while waiting: once true, the wait ends with LockWaitAbandoned and `work` never runs. */
  abandonWhen?: () => boolean;
}

/** Another host's process cannot be asked whether it lives: its lock is abandoned once not refreshed for this long. */
const OTHER_HOST_STALE_MS = 10 * 60_000;
/** A lock whose owner cannot be read (a directory an older version left) is abandoned once this old. */
const UNREADABLE_GRACE_MS = 10_000;
const REFRESH_MS = 60_000;
const POLL_MS = 500;
const LOCK_SUFFIX = '.lock';
const LEASE_SUFFIX = '.lease';

/**
 * Runs `work` while holding an inter-process lock named `name` in `dir`. The lock is a file
 * holding its owner, made atomically; another process takes it over only when that owner is
 * provably gone, however long a live owner stays quiet (a build paused with Ctrl-Z keeps it).
 */
export async function withLock<T>(
  dir: string,
  name: string,
  work: () => Promise<T>,
  { onWait, timeoutMs = 60 * 60_000, abandonWhen }: LockOptions = {},
): Promise<T> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, safeLockName(name) + LOCK_SUFFIX);
  const deadline = Date.now() + timeoutMs;
  let toldWaiting = false;
  let held: Held | undefined;
  while (!(held = tryToHold(file, name))) {
    if (stopRequested()) throw new BuildInterrupted(`the wait for lock ${name}`);
    if (abandonWhen?.()) throw new LockWaitAbandoned(name);
    if (takeOverIfAbandoned(file)) continue;
    const holder = holderOf(file);
    if (!toldWaiting) onWait?.(holder);
    toldWaiting = true;
    if (Date.now() >= deadline) throw timedOut(name, holder, timeoutMs);
    await sleep(POLL_MS);
  }
  try {
    return await work();
  } finally {
    held.release();
  }
}

/** Runs `work` holding lock `name` in `dir` when no live process holds it; else returns undefined at once. */
export async function ifLockFree<T>(dir: string, name: string, work: () => Promise<T>): Promise<T | undefined> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, safeLockName(name) + LOCK_SUFFIX);
  const held = tryToHold(file, name) ?? (takeOverIfAbandoned(file) ? tryToHold(file, name) : undefined);
  if (!held) return undefined;
  try {
    return await work();
  } finally {
    held.release();
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

/**
 * Takes a lease in `dir` for `holder` and returns its release. Leases never exclude each other:
 * any number may be held at once. They tell another process (clean) what is in use, and one
 * whose owner is gone stops counting by the same rule as a lock.
 */
export async function holdLease(dir: string, holder: string): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${encodeURIComponent(holder).replace(/\./g, '%2E')}.${randomUUID()}${LEASE_SUFFIX}`);
  const held = tryToHold(file, `lease ${holder}`)!;
  return async () => held.release();
}

export interface LiveLease {
  holder: string;
  owner: LockHolder;
}

/** The leases in `dir` whose owner is alive (or, on another host, refreshed lately). */
export async function liveLeases(dir: string): Promise<LiveLease[]> {
  return readdirOrEmpty(dir)
    .filter((entry) => entry.endsWith(LEASE_SUFFIX))
    .flatMap((entry) => {
      const file = join(dir, entry);
      const look = lookAt(file);
      if (!look?.owner || isAbandoned(look)) return [];
      return [{ holder: decodeURIComponent(entry.split('.')[0]), owner: holderFrom(look.owner) }];
    });
}

/**
 * Removes the leases in `dir` whose owner is gone (a process killed before it released them). A
 * lease's owner never comes back, and each lease has a name of its own, so no live lease is
 * touched. Returns how many it removed.
 */
export function removeAbandonedLeases(dir: string): number {
  let removed = 0;
  for (const entry of readdirOrEmpty(dir).filter((name) => name.endsWith(LEASE_SUFFIX))) {
    const look = lookAt(join(dir, entry));
    if (look?.owner && isAbandoned(look)) {
      rmSync(join(dir, entry), { force: true });
      removed++;
    }
  }
  return removed;
}

/** The holders of the leases in `dir` that are still held by a live process. */
export async function liveLeaseHolders(dir: string): Promise<string[]> {
  return (await liveLeases(dir)).map((lease) => lease.holder);
}

/** A file-system-safe lock name: readable prefix plus a hash of the full key. */
export function safeLockName(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-40);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}

interface Held {
  release(): void;
}

/**
 * Makes `file` holding this process as its owner, or returns undefined when it exists. The
 * owner is written to a file of its own first and linked into place, so the lock never exists
 * without it. While held, the file's time is refreshed for contenders on other hosts.
 */
function tryToHold(file: string, name: string): Held | undefined {
  const owner = currentOwner();
  const draft = `${file}.${owner.token}.tmp`;
  writeFileSync(draft, JSON.stringify(owner) + '\n');
  try {
    linkSync(draft, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw error;
  } finally {
    unlinkSync(draft);
  }
  const refresh = setInterval(() => {
    try {
      const now = lookAt(file);
      if (now?.owner?.token === owner.token) return utimesSync(file, new Date(), new Date());
      clearInterval(refresh);
      // Gone with its folder (`.dot` removed) there is nothing to warn about; another owner took it.
      if (now) console.warn(`nx-dbt-isolated: lock ${name} was taken over by another process`);
    } catch {
      // Tried again at the next refresh.
    }
  }, REFRESH_MS).unref();
  return {
    release() {
      clearInterval(refresh);
      if (ownsFile(file, owner.token)) rmSync(file, { force: true });
    },
  };
}

interface Look {
  /** Identifies this very file: a lock made again in its place has another. */
  inode: number;
  refreshedAt: number;
  owner?: LockOwner;
}

function lookAt(file: string): Look | undefined {
  try {
    const stat = statSync(file);
    const owner = stat.isFile() ? parseOwner(readFileSync(file, 'utf8')) : undefined;
    return { inode: stat.ino, refreshedAt: stat.mtimeMs, owner };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(text) as LockOwner;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Abandoned: its owner is a process of this host that is gone (or a new process under its pid),
 * or of another host and not refreshed for OTHER_HOST_STALE_MS; a lock without a readable owner
 * once older than UNREADABLE_GRACE_MS.
 */
function isAbandoned({ owner, refreshedAt }: Look): boolean {
  const quietFor = Date.now() - refreshedAt;
  if (!owner) return quietFor > UNREADABLE_GRACE_MS;
  if (owner.host !== hostname()) return quietFor > OTHER_HOST_STALE_MS;
  return !isAlive(owner);
}

/**
 * Removes `file` when it is abandoned; true when it is gone. It is moved aside first and checked
 * to be the very lock judged abandoned, so a contender that took it over meanwhile keeps its own.
 */
function takeOverIfAbandoned(file: string): boolean {
  const look = lookAt(file);
  if (!look) return true;
  if (!isAbandoned(look)) return false;
  const aside = `${file}.${randomUUID()}.abandoned`;
  try {
    renameSync(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
  const moved = lookAt(aside);
  const sameLock = moved?.inode === look.inode && moved.owner?.token === look.owner?.token;
  // Put back with link, which never replaces a lock made in its place since.
  if (!sameLock) restore(aside, file);
  rmSync(aside, { recursive: true, force: true });
  return sameLock;
}

function restore(aside: string, file: string): void {
  try {
    linkSync(aside, file);
  } catch {
    // Made again meanwhile: the owner of the lock moved aside finds it lost at its next refresh.
  }
}

function ownsFile(file: string, token: string): boolean {
  return lookAt(file)?.owner?.token === token;
}

function holderOf(file: string): LockHolder | undefined {
  const owner = lookAt(file)?.owner;
  return owner && holderFrom(owner);
}

function holderFrom(owner: LockOwner): LockHolder {
  const stopped = owner.host === hostname() && processOnThisHost(owner.pid)?.state === 'T';
  return { pid: owner.pid, host: owner.host, stopped };
}

function currentOwner(): LockOwner {
  return {
    pid: process.pid,
    host: hostname(),
    startTime: processOnThisHost(process.pid)?.startTime,
    token: randomUUID(),
  };
}

function isAlive(owner: LockOwner): boolean {
  if (!HAS_PROC) return signalReaches(owner.pid);
  const running = processOnThisHost(owner.pid);
  if (!running || running.state === 'Z') return false;
  return owner.startTime === undefined || running.startTime === owner.startTime;
}

const HAS_PROC = (() => {
  try {
    return statSync('/proc/self/stat').isFile();
  } catch {
    return false;
  }
})();

/** State (R, S, T for stopped, Z for a zombie…) and start time of a process, from /proc. */
function processOnThisHost(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces; fields after it are space-separated.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], startTime: fields[19] };
  } catch {
    return undefined;
  }
}

/** Where there is no /proc: signal 0 reaches a live process (EPERM: alive, another user's). */
function signalReaches(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder in words: `process 123 on host`, and when it is stopped, how to resume it. */
export function describeHolder({ pid, host, stopped }: LockHolder): string {
  return `process ${pid} on ${host}${stopped ? `, which is stopped (resume it with fg or kill -CONT ${pid})` : ''}`;
}

/** For a waiting line: `, held by process 123 on host, which is stopped (resume it …)` when the holder is stopped. */
export function ifStopped(holder: LockHolder | undefined): string {
  return holder?.stopped ? `, held by ${describeHolder(holder)}` : '';
}

/** A lock still held by a live process when the caller stopped waiting for it. */
export class LockTimeout extends UserError {}

/**
 * The wait for a lock ended because what it waited for no longer needs it (LockOptions.abandonWhen);
 * its message is the lock's name. The caller knows why it gave up, and no user ever reads it.
 */
export class LockWaitAbandoned extends Error {}

function timedOut(name: string, holder: LockHolder | undefined, timeoutMs: number): UserError {
  return new LockTimeout(
    `timed out after ${Math.round(timeoutMs / 1000)} s waiting for lock ${name}, held by ${holder ? describeHolder(holder) : 'another process'}: let that process finish or end it, then run this again.`,
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
