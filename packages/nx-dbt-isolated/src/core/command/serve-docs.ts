import { dbtArgs } from '../dbt/args';
import { dbtEnvironment, startForwardingSignals } from '../dbt/process';
import { UserError } from '../workspace/errors';
import type { CommandAtCommit } from './run-at-commit';

export interface DocsServer {
  host: string;
  port: number;
}

/**
 * Serves a commit's generated docs with `dbt docs serve` until the user stops it (Ctrl-C): dbt's
 * own server, over the folder `docs generate` wrote, in the commit's checkout.
 */
export async function serveDocs(
  dbt: string,
  generated: CommandAtCommit,
  server: DocsServer,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const args = [
    ...dbtArgs(['docs', 'serve'], generated.locations),
    '--host',
    server.host,
    '--port',
    String(server.port),
    '--no-browser',
  ];
  const { exited } = startForwardingSignals(dbt, args, {
    cwd: generated.checkedOut.projectDir,
    env: dbtEnvironment(env),
    stdio: 'inherit',
  });
  const exit = await exited;
  // Stopping the server (Ctrl-C) is how it ends.
  if (exit.interrupted || exit.code === 0) return;
  throw new UserError(
    `dbt docs serve stopped with exit code ${exit.code} (its output is above): if port ${server.port} is taken, pick another with --port.`,
  );
}
