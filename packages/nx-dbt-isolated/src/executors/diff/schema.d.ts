export interface DiffExecutorOptions {
  /** Numbers when Nx read a short sha made of digits only. */
  base?: string | number;
  head?: string | number;
  target?: string;
  select?: string[] | string;
  format?: 'table' | 'json' | 'markdown';
  outputFile?: string;
  buildTarget?: string;
  profilesDir?: string;
  dbtExecutable?: string;
}
