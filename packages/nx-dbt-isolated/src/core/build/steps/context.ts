import { storesAllTestFailures, type DbtCommand, type DbtSelection } from '../../dbt/args';
import type { WriteOptions } from '../../dbt/artifacts';
import type { DbtProjectFile } from '../../dbt/project';
import type { IsolatedProfile } from '../../dbt/profiles';
import type { BuildPaths } from '../../workspace/dot-layout';
import type { BuildCommit } from '../full-build';
import type { BuildRecord } from '../records';
import type { DeferralBase } from '../slim';
import type { ProjectCheckout } from './checkout';
import type { Reporter } from '../../workspace/reporter';
import type { KeyInputs } from '../../cache/key';
import type { WarehouseConnection } from '../../dbt/operation';

export interface IsolatedBuildRequest {
  workspaceRoot: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  /** Names the project's folders under `.dot/<short_hash>/`. */
  project: string;
  ref: string;
  /** The dbt target; DBT_TARGET, then the profile's default, when absent. */
  target?: string;
  command: DbtCommand;
  selection: DbtSelection;
  /** Relative to the workspace root. */
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
  /** Check out only the folders the build reads (default); false checks out every file. */
  sparseCheckout?: boolean;
  /** More folders the build reads, relative to the workspace root, for a sparse checkout. */
  checkoutFolders?: string[];
  /** Build only what changed since this ref's isolated build, reading everything else from it (slim.ts). */
  deferTo?: string;
  /** Builds the `deferTo` commit when it has no isolated build yet; absent, that is the user's to do. */
  buildBase?: BuildCommit;
  /** The Nx target that runs this build, for the commands messages suggest. */
  targetName: string;
  /** The project's Nx target that promotes, for the commands messages suggest. */
  promoteTarget: string;
  /** Node unique ids or names allowed to write outside the isolated schema (see guard.ts). */
  isolationExceptions?: string[];
  /** Schemas of source data every build shares (e.g. raw): seeds and snapshots may write there (shared-schemas.ts). */
  sharedSchemas?: string[];
  /** PostgreSQL: dbt's command runs as a role that may create only in the build's schemas (warehouse/strict-isolation.ts). */
  strictIsolation?: boolean;
  /**
   * The key Nx cached this build under (see cache/key.ts); checked against the commit actually
   * built so that a cache entry never holds another commit's build. Absent when not cached.
   */
  expectedKey?: string;
  /** When the key Nx hashed was computed, to tell a clean that ran meanwhile from a moved ref. */
  keyedAt?: Date;
  /** The Nx run that caches this build: what it stages is signed with it (see cache/staged-artifacts.ts). */
  runId?: string;
  /** The user asked to run dbt again (`--skip-nx-cache`): no earlier build is reused. */
  rebuild?: boolean;
}

export interface IsolatedBuildResult {
  success: boolean;
  record: BuildRecord;
  paths: BuildPaths;
}

export interface BuildContext {
  request: IsolatedBuildRequest;
  reporter: Reporter;
  dbt: string;
  /** profiles.yml and dbt as found once for this build (see cache/key.ts). */
  keyInputs: KeyInputs;
  checkedOut: ProjectCheckout;
  dbtProject: DbtProjectFile;
  profile: IsolatedProfile;
  paths: BuildPaths;
  /** The commit `deferTo` names; its build is looked up only when this one runs dbt. */
  baseCommit?: string;
  base?: DeferralBase;
}

/** The connection the plugin's own statements of this build use: the build's generated profile, as the user. */
export function buildConnection({ request, dbt, paths, dbtProject, profile }: BuildContext): WarehouseConnection {
  return {
    workspaceRoot: request.workspaceRoot,
    dbt,
    profilesDir: paths.profilesDir,
    profile: dbtProject.profile!,
    target: profile.target,
    env: request.env,
  };
}

/** The command that builds the project in full at the requested ref, for messages to suggest. */
export function fullBuildCommand(request: IsolatedBuildRequest): string {
  return `nx run ${request.project}:${request.targetName} --ref=${request.ref}`;
}

/** The command that promotes a commit of the project, for messages to suggest. */
export function promoteCommand(request: IsolatedBuildRequest): string {
  return `nx run ${request.project}:${request.promoteTarget}`;
}

export function writeOptions(request: IsolatedBuildRequest): WriteOptions {
  return { allTestFailures: storesAllTestFailures(request.selection.extraArgs, request.env) };
}
