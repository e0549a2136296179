import type { DbtAdapter } from './adapter';
import { genericAdapter } from './generic';

/**
 * Takes every view before touching any, without waiting on readers (retrying for up to 10 s).
 * Taken one by one while readers hold some of them, the locks would deadlock with a reader's
 * query, and PostgreSQL would end one of the two.
 */
function lockViews(views: string[]): string {
  return `do $$
declare
  attempts integer := 0;
begin
  loop
    begin
      lock table ${views.join(', ')} in access exclusive mode nowait;
      return;
    exception when lock_not_available then
      attempts := attempts + 1;
      if attempts >= 400 then
        raise;
      end if;
      perform pg_sleep(0.025);
    end;
  end loop;
end
$$`;
}

/** dbt-postgres: claims, advisory locks and per-build roles are PostgreSQL's; a replace cascades. */
export const postgresAdapter: DbtAdapter = {
  ...genericAdapter,
  locationFields: ['host', 'port', 'dbname', 'database', 'schema'],
  replaceCascades: true,
  lockViews,
  rolesAndClaims: true,
};
