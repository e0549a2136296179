export interface CleanExecutorOptions {
  ref?: string | string[];
  keep?: number;
  olderThan?: string;
  unreachable?: boolean;
  all?: boolean;
  dryRun?: boolean;
  schemas?: boolean;
  protect?: string[];
  target?: string;
  dbtExecutable?: string;
}
