import { stringify } from 'yaml';

/** One target of a profile: its fields as profiles.yml writes them. */
export type Output = Record<string, string | number>;

/** A developer's PostgreSQL target: localhost, database `warehouse`, schema `dev_me`. */
export const DEV_POSTGRES: Output = {
  type: 'postgres',
  host: 'localhost',
  port: 5432,
  user: 'me',
  password: 'secret',
  dbname: 'warehouse',
  schema: 'dev_me',
};

/** profiles.yml text of one profile, its default target `dev`, and the given targets. */
export function profilesYaml(profile: string, outputs: Record<string, Output>): string {
  return stringify({ [profile]: { target: 'dev', outputs } });
}
