const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
/** Told of each stop signal: the dbt processes running (see dbt/process.ts). */
const onStop = new Set<(signal: NodeJS.Signals) => void>();
/** Scopes listening for a stop signal: each running process and each `stoppingGracefully` call. */
let listeningScopes = 0;
let requested = false;

function passOnStop(signal: NodeJS.Signals): void {
  requested = true;
  onStop.forEach((tell) => tell(signal));
}

/** Catches Ctrl-C and SIGTERM until the matching `stopListening`; a stop lasts until the last scope ends. */
export function listenForStop(): void {
  if (listeningScopes++ > 0) return;
  STOP_SIGNALS.forEach((signal) => process.on(signal, passOnStop));
}

export function stopListening(): void {
  if (--listeningScopes > 0) return;
  requested = false;
  STOP_SIGNALS.forEach((signal) => process.off(signal, passOnStop));
}

/** True once Ctrl-C or SIGTERM came while a scope listened: whatever waits should give up. */
export function stopRequested(): boolean {
  return requested;
}

/** Calls `tell` with each stop signal until the returned function is called. */
export function whenStopped(tell: (signal: NodeJS.Signals) => void): () => void {
  onStop.add(tell);
  return () => onStop.delete(tell);
}

/**
 * Runs `work` with Ctrl-C and SIGTERM caught for all of it, not only while dbt runs: Nx sends both
 * signals, at moments of its own, and one that came after dbt had exited would end this process
 * before `work` wrote its record and released its locks. A signal is passed on to the dbt then
 * running; once one came, no dbt starts again (its run reports `interrupted` at once) and a wait
 * for a lock gives up with BuildInterrupted.
 */
export async function stoppingGracefully<T>(work: () => Promise<T>): Promise<T> {
  listenForStop();
  try {
    return await work();
  } finally {
    stopListening();
  }
}
