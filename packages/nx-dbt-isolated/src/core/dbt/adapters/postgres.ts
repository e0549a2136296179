import type { DbtAdapter } from './adapter';
import { genericAdapter } from './generic';

/** dbt-postgres: claims, advisory locks and per-build roles are PostgreSQL's. */
export const postgresAdapter: DbtAdapter = { ...genericAdapter, rolesAndClaims: true };
