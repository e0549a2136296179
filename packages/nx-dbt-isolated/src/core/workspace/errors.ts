/**
 * A problem the user can fix. Its message is one line naming the problem and the fix; the
 * executors print it as is, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The build was stopped by Ctrl-C or SIGTERM; dbt has exited and the locks are released. */
export class BuildInterrupted extends UserError {
  constructor(phase: string) {
    super(`stopped by a signal during ${phase}; run the build again to finish it.`);
    this.name = 'BuildInterrupted';
  }
}
