export interface DocsExecutorOptions {
  /** A number when Nx read a short sha made of digits only. */
  ref?: string | number;
  target?: string;
  serve?: boolean;
  port?: number;
  host?: string;
  select?: string | string[];
  vars?: string | Record<string, unknown>;
  buildTarget?: string;
  sparseCheckout?: boolean;
  checkoutFolders?: string[];
  profilesDir?: string;
  dbtExecutable?: string;
}
