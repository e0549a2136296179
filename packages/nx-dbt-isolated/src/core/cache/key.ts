import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { earlierRebuiltTokens, rebuiltToken, schemasDroppedAt, schemasDroppedToken } from './key-marks';
import { dbtPython, findDbt, sitePackagesOf } from '../dbt/executable';
import { UserError } from '../workspace/errors';
import { readdirOrEmpty } from '../workspace/files';
import { readProfilesFile } from '../dbt/profiles';
import { issueDuckDbTokens, warehouseLocations, type WarehouseKeyRequest } from './warehouse-token';

export interface BuildKeyRequest {
  workspaceRoot: string;
  /** The Nx project. */
  project: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  commit: string;
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
  /** `profile:` of dbt_project.yml at the commit. */
  profile?: string;
  /** The dbt target asked for (option, command line, DBT_TARGET); the profile's default when absent. */
  dbtTarget?: string;
  /** The commit a slim build defers to. */
  deferTo?: string;
  /**
   * dbt's `--exclude`: Nx takes `--exclude` on `nx run` for itself and never hashes it, so a build
   * that leaves nodes out would otherwise share the full build's cache entry.
   */
  exclude?: string[];
  /** What the key reads besides git, when the caller has it already; read here when absent. */
  inputs?: KeyInputs;
}

/** The files a key reads, found and read once by a caller that needs them too. */
export interface KeyInputs {
  /** The user's profiles.yml: where it is and its text. */
  profiles: { file: string; text: string };
  /** The dbt that runs the build. */
  dbt: string;
}

/** Finds and reads what buildKey reads besides git. */
export function readKeyInputs(request: BuildKeyRequest): KeyInputs {
  return {
    profiles: readProfilesFile(request),
    dbt: findDbt(request.workspaceRoot, request.dbtExecutable, request.env.PATH),
  };
}

/** Prefix of a key that matches nothing: the build cannot be keyed and must not be cached. */
export const UNCACHEABLE = 'uncacheable';

/**
 * The part of an isolated build's cache key that Nx cannot see: the commit a ref resolved to,
 * where the build's dbt target points, the versions of dbt, its adapters and this plugin, the
 * last time a clean dropped the commit's schemas and the last forced rebuild of it.
 * Executor options and the dbt target chosen on the command line reach Nx's hash by themselves.
 */
export function buildKey(
  request: BuildKeyRequest,
  /** The last forced rebuild's token; null for none. */
  rebuilt: string | null = rebuiltToken(request.workspaceRoot, request.project, request.commit) ?? null,
): string {
  const { profiles, dbt } = request.inputs ?? readKeyInputs(request);
  const locations = warehouseLocations(locationRequest(request, profiles));
  if (locations === undefined) return `${UNCACHEABLE}-${randomUUID()}`;
  const parts = {
    version: 1,
    commit: request.commit,
    ...(request.deferTo === undefined ? {} : { deferTo: request.deferTo }),
    ...(request.exclude === undefined ? {} : { exclude: request.exclude }),
    locations,
    dbt: installedDbtPackages(dbt),
    plugin: pluginVersion(),
    schemasDropped: schemasDroppedToken(request.workspaceRoot, request.project, request.commit) ?? null,
    ...(rebuilt === null ? {} : { rebuilt }),
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * Makes the DuckDB file tokens the key reads (warehouse-token.ts), where missing: the hook runs
 * it before keying, since buildKey only reads and keys a build without its token as uncacheable.
 */
export function issueKeyTokens(request: BuildKeyRequest): void {
  const { profiles } = request.inputs ?? readKeyInputs(request);
  issueDuckDbTokens(locationRequest(request, profiles));
}

function locationRequest(request: BuildKeyRequest, profiles: KeyInputs['profiles']): WarehouseKeyRequest {
  return {
    profilesText: profiles.text,
    profilesFile: profiles.file,
    projectDir: join(request.workspaceRoot, request.projectRoot),
    workspaceRoot: request.workspaceRoot,
    env: request.env,
    profile: request.profile,
    target: request.dbtTarget,
  };
}

/**
 * The dbt, adapter and database driver packages beside this dbt, from the names of their
 * `.dist-info` folders: as exact as `dbt --version` without its second of start-up.
 */
export function installedDbtPackages(dbt: string): string[] {
  const python = dbtPython(dbt);
  const packages = python ? distributionsIn(sitePackagesOf(python)) : [];
  if (packages.length > 0) return packages;
  const real = realpathSync(dbt);
  return [`${real}@${statSync(real).mtimeMs}`];
}

const DBT_DISTRIBUTION = /^((?:dbt[_-].+)|duckdb|psycopg2(?:[_-]binary)?|psycopg)-([^-]+)\.dist-info$/i;

function distributionsIn(sitePackages: string[]): string[] {
  const found: string[] = [];
  for (const dir of sitePackages) {
    for (const entry of readdirOrEmpty(dir)) {
      const match = DBT_DISTRIBUTION.exec(entry);
      if (match) found.push(`${match[1].toLowerCase().replace(/_/g, '-')}==${match[2]}`);
    }
  }
  return found.sort();
}

export function pluginVersion(): string {
  return JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')).version;
}

/**
 * Whether `key` is the build's key as it was before one of the last forced rebuilds of the
 * commit started: a build hashed then, waiting for the rebuild, is still the build Nx keyed.
 */
export function keyedBeforeRebuild(request: BuildKeyRequest, key: string): boolean {
  const earlier = earlierRebuiltTokens(request.workspaceRoot, request.project, request.commit);
  return earlier.some((token) => buildKey(request, token) === key);
}

export interface KeyMismatch {
  workspaceRoot: string;
  project: string;
  ref: string;
  commit: string;
  /** When the plugin's hook computed the key Nx hashed. */
  keyedAt?: Date;
}

/**
 * Why the key Nx hashed is not the build's: a clean that dropped the commit's schemas after the
 * hook keyed the build (the drop joins the key), or else a ref or profile that changed meanwhile.
 */
export function keyMismatchError({ workspaceRoot, project, ref, commit, keyedAt }: KeyMismatch): UserError {
  const droppedAt = schemasDroppedAt(workspaceRoot, project, commit);
  if (keyedAt && droppedAt && droppedAt >= keyedAt) {
    return new UserError(
      `a clean dropped the schemas of ${project} at ${commit.slice(0, 12)} at ${droppedAt.toISOString()}, after Nx computed this build's cache key: run the build again, which builds the commit anew.`,
    );
  }
  return new UserError(
    `the cache key Nx computed before the build does not match commit ${commit.slice(0, 12)} (did ${ref} move, or profiles.yml change, while Nx started?): run the build again.`,
  );
}
