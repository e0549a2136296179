import { homedir } from 'node:os';

/** The options of every executor that checks a commit out and runs dbt there. */
export interface CheckoutOptions {
  sparseCheckout?: boolean;
  checkoutFolders?: string[];
  profilesDir?: string;
  dbtExecutable?: string;
}

/** Those options as core takes them, with the environment dbt and the profile are read in. */
export function checkoutAndDbt({ sparseCheckout, checkoutFolders, profilesDir, dbtExecutable }: CheckoutOptions) {
  return { sparseCheckout, checkoutFolders, profilesDir, dbtExecutable, env: process.env, homeDir: homedir() };
}
