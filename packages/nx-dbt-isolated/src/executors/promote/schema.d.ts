export interface PromoteExecutorOptions {
  /** A number when Nx read a short sha made of digits only. */
  ref?: string | number;
  schema?: string;
  target?: string;
  dryRun?: boolean;
  buildTarget?: string;
  profilesDir?: string;
  dbtExecutable?: string;
}
