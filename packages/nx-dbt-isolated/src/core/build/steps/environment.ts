import type { DbtLocations } from '../../dbt/args';
import { dbtEnvironment } from '../../dbt/process';
import { strictIsolation, type StrictIsolation } from '../../warehouse/strict-isolation';
import { UserError } from '../../workspace/errors';
import { buildConnection, type BuildContext } from './context';

/** Where dbt runs and with what environment, for `dbt deps` and the guarded dbt run. */
export interface DbtRunEnvironment {
  locations: DbtLocations;
  /** The user's environment for dbt, without strict isolation's role. */
  userEnv: NodeJS.ProcessEnv;
  /** What dbt runs with: the user's environment, the strict role set when there is one. */
  env: NodeJS.ProcessEnv;
  /** PostgreSQL's strict isolation, when asked for (warehouse/strict-isolation.ts). */
  strict?: StrictIsolation;
}

export function dbtRunEnvironment(context: BuildContext): DbtRunEnvironment {
  const { request, checkedOut, profile, paths } = context;
  const strict = request.strictIsolation ? strictIsolationOf(context) : undefined;
  const userEnv = dbtEnvironment(request.env);
  const locations = {
    projectDir: checkedOut.projectDir,
    profilesDir: paths.profilesDir,
    target: profile.target,
    targetPath: paths.targetPath,
    logPath: paths.logPath,
  };
  return { locations, userEnv, env: strict?.environment(userEnv) ?? userEnv, strict };
}

function strictIsolationOf(context: BuildContext): StrictIsolation {
  const { request, reporter, profile } = context;
  if ((request.sharedSchemas ?? []).length > 0) {
    throw new UserError(
      `strictIsolation lets dbt create only in ${profile.schema} and ${profile.schema}_*, and sharedSchemas lets seeds and snapshots write to ${request.sharedSchemas!.join(', ')}: build with one of the two options, not both.`,
    );
  }
  const connection = buildConnection(context);
  return strictIsolation({ profile, connection, exceptions: request.isolationExceptions ?? [], reporter });
}
