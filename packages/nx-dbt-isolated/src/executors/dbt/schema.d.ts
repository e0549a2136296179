import type { CommitCommand } from '../../core/command/commit-commands';

export interface DbtCommandExecutorOptions {
  /** A number when Nx read a short sha made of digits only. */
  ref?: string | number;
  command: CommitCommand;
  target?: string;
  select?: string | string[];
  exclude?: string | string[];
  selector?: string;
  inline?: string;
  limit?: number;
  macro?: string;
  macroArgs?: string;
  strictIsolation?: boolean;
  vars?: string | Record<string, unknown>;
  threads?: number;
  args?: string | string[];
  buildTarget?: string;
  sparseCheckout?: boolean;
  checkoutFolders?: string[];
  profilesDir?: string;
  dbtExecutable?: string;
}
