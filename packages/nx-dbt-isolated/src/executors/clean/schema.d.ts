export interface CleanExecutorOptions {
  ref?: string | number | (string | number)[];
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
