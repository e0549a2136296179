import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DBT_PROJECT_FILE, readDbtProject } from './project';
import { UserError } from '../workspace/errors';
import { isolateProfile, profilesFileFor, renderEnvVars, type ProfilesFileRequest } from './profiles';

/**
 * The dbt target asked for: `nx run … --target` over the Nx target's `target` option. An empty
 * value asks for none, as dbt reads an empty DBT_TARGET, so the build and its key agree on it.
 */
export function askedDbtTarget(commandLine: string | undefined, option: string | undefined): string | undefined {
  return commandLine || option || undefined;
}

/** The dbt target a command means: the one asked for (askedDbtTarget), else DBT_TARGET; undefined is the profile's default. */
export function dbtTargetFor(asked: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return asked || env.DBT_TARGET || undefined;
}

export interface DbtTargetLookup extends ProfilesFileRequest {
  /** The dbt target asked for; else DBT_TARGET, else the profile's default. */
  target?: string;
}

export interface DbtTarget {
  /** The profile of the project's dbt_project.yml. */
  profile: string;
  target: string;
  /** The target's own schema, as the user's dbt would write to it. */
  schema: string;
}

/** The dbt target a command on the project means, read from the working tree as dbt would. */
export function resolveDbtTarget(lookup: DbtTargetLookup): DbtTarget {
  const projectDir = join(lookup.workspaceRoot, lookup.projectRoot);
  const { profile } = readDbtProject(projectDir);
  if (!profile) {
    throw new UserError(
      `${lookup.projectRoot}/${DBT_PROJECT_FILE} has no 'profile:', so there is no dbt target to use: add 'profile: <name>' naming a profile in profiles.yml.`,
    );
  }
  const file = profilesFileFor(lookup);
  const isolated = isolateProfile({
    text: readFileSync(file, 'utf8'),
    file,
    profile,
    target: dbtTargetFor(lookup.target, lookup.env),
    suffix: 'isolated',
    projectDir,
    env: lookup.env,
  });
  return { profile, target: isolated.target, schema: String(renderEnvVars(isolated.baseSchema, lookup.env)) };
}
