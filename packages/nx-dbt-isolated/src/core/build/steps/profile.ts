import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DBT_PROJECT_FILE, readDbtProject, type DbtProjectFile } from '../../dbt/project';
import { isolateProfile, PROFILES_FILE, type IsolatedProfile } from '../../dbt/profiles';
import type { KeyInputs } from '../../cache/key';
import { dbtTargetFor } from '../../dbt/target';
import type { BuildPaths } from '../../workspace/dot-layout';
import { UserError } from '../../workspace/errors';
import type { IsolatedBuildRequest } from './context';
import type { ProjectCheckout } from './checkout';

/** A `dbt_project.yml` that names the profile dbt builds with. */
export type ProfiledProject = DbtProjectFile & { profile: string };

/** The checked-out `dbt_project.yml`, which must name the profile dbt builds with. */
export function projectAtCommit(
  request: Pick<IsolatedBuildRequest, 'projectRoot' | 'ref'>,
  { projectDir, commit }: ProjectCheckout,
): ProfiledProject {
  const dbtProject = readDbtProject(
    projectDir,
    `${request.projectRoot}/${DBT_PROJECT_FILE} at ${request.ref} (${commit.slice(0, 12)})`,
  );
  if (!dbtProject.profile) {
    throw new UserError(
      `${request.projectRoot}/${DBT_PROJECT_FILE} has no 'profile:' at ${request.ref} (${commit.slice(0, 12)}), so dbt cannot build it: add 'profile: <name>' naming a profile in profiles.yml.`,
    );
  }
  return { ...dbtProject, profile: dbtProject.profile };
}

export function isolatedProfileFor(
  request: Pick<IsolatedBuildRequest, 'target' | 'env'>,
  profiles: KeyInputs['profiles'],
  profileName: string,
  buildId: string,
  workingProjectDir: string,
): IsolatedProfile {
  return isolateProfile({
    ...profiles,
    profile: profileName,
    target: dbtTargetFor(request.target, request.env),
    suffix: buildId,
    projectDir: workingProjectDir,
    env: request.env,
  });
}

/** The build's own profiles.yml, which only its user may read: it can hold credentials. */
export function writeIsolatedProfile(paths: BuildPaths, profile: IsolatedProfile): void {
  mkdirSync(paths.profilesDir, { recursive: true });
  writeFileSync(join(paths.profilesDir, PROFILES_FILE), profile.yaml, { mode: 0o600 });
}
