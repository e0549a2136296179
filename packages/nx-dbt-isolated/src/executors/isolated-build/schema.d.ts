import type { DbtCommand } from '../../core/dbt/args';

export interface IsolatedBuildExecutorOptions {
  /** A number when Nx read a short sha made of digits only. */
  ref?: string | number;
  target?: string;
  command?: DbtCommand;
  select?: string[] | string;
  exclude?: string[] | string;
  selector?: string;
  vars?: string | Record<string, unknown>;
  threads?: number;
  fullRefresh?: boolean;
  /** A number when Nx read a short sha made of digits only. */
  deferTo?: string | number;
  buildBase?: boolean;
  args?: string[] | string;
  isolationExceptions?: string[];
  sharedSchemas?: string[] | string;
  strictIsolation?: boolean;
  sparseCheckout?: boolean;
  checkoutFolders?: string[];
  profilesDir?: string;
  dbtExecutable?: string;
}
