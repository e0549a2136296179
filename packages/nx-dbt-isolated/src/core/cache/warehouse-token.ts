import { statSync } from 'node:fs';
import { readJson, writeJsonAtomically } from '../workspace/files';
import { isAbsolute, join, relative } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { dotRoot, ensureDotFolder } from '../workspace/dot-layout';
import { absoluteDuckDbPath, isMap, parseProfiles, renderEnvVars } from '../dbt/profiles';

/** Fields that say where a target's relations live. Credentials and tuning are left out. */
const LOCATION_FIELDS = [
  'type',
  'host',
  'port',
  'server',
  'account',
  'project',
  'dbname',
  'database',
  'catalog',
  'schema',
  'dataset',
  'path',
  'http_path',
  'location',
];

export interface WarehouseKeyRequest {
  profilesText: string;
  profilesFile: string;
  /** The project folder in the working tree: relative DuckDB paths start there. */
  projectDir: string;
  workspaceRoot: string;
  env: NodeJS.ProcessEnv;
  /** The profile the build connects with; every profile when unknown. */
  profile?: string;
  /** The dbt target asked for; the profile's default when absent. */
  target?: string;
}

/**
 * Where the build's target points, rendered: a change of host, database, schema or DuckDB file
 * changes it; key order, comments, passwords, thread counts and other targets do not. Every
 * target of every profile when the profile is not known. `undefined` when a location is a
 * template other than env_var, which the plugin cannot render: such a build must not be cached.
 */
export function warehouseLocations(request: WarehouseKeyRequest): unknown {
  const profiles = parseProfiles(request.profilesText, request.profilesFile);
  const profile = request.profile === undefined ? undefined : profiles[request.profile];
  const locations = isMap(profile) ? targetLocation(profile, request) : everyLocation(profiles, request);
  return JSON.stringify(locations).includes('{{') ? undefined : locations;
}

function targetLocation(profile: Record<string, unknown>, request: WarehouseKeyRequest): unknown {
  const target = request.target ?? renderEnvVars(profile.target, request.env) ?? 'default';
  const output = isMap(profile.outputs) ? profile.outputs[String(target)] : undefined;
  return { profile: request.profile, target, location: isMap(output) ? outputLocation(output, request) : null };
}

function everyLocation(profiles: Record<string, unknown>, request: WarehouseKeyRequest): unknown {
  const locations: Record<string, unknown> = {};
  for (const [name, profile] of Object.entries(profiles).sort()) {
    if (!isMap(profile) || !isMap(profile.outputs)) continue;
    const targets: Record<string, unknown> = { '(default)': renderEnvVars(profile.target, request.env) };
    for (const [target, output] of Object.entries(profile.outputs).sort()) {
      if (isMap(output)) targets[target] = outputLocation(output, request);
    }
    locations[name] = targets;
  }
  return locations;
}

function outputLocation(output: Record<string, unknown>, request: WarehouseKeyRequest): Record<string, unknown> {
  const location: Record<string, unknown> = {};
  for (const field of LOCATION_FIELDS) {
    if (output[field] !== undefined) location[field] = renderEnvVars(output[field], request.env);
  }
  if (location.type === 'duckdb') location.path = duckDbLocation(location.path, request);
  return location;
}

/**
 * A local DuckDB file is named by its path inside the workspace, so clones at other paths agree,
 * plus a token that changes whenever the file itself is new: another clone's file, or one that
 * was deleted, does not hold this clone's builds.
 */
function duckDbLocation(path: unknown, request: WarehouseKeyRequest): unknown {
  const file = absoluteDuckDbPath(path, request.projectDir);
  if (typeof file !== 'string' || !isAbsolute(file)) return file;
  const inWorkspace = relative(request.workspaceRoot, file);
  const shown = inWorkspace.startsWith('..') ? file : inWorkspace;
  return { file: shown, token: duckDbToken(request.workspaceRoot, file) };
}

interface TokenRecord {
  file: string;
  token: string;
  /** The database file's inode once a build has written it. */
  inode?: number;
}

function tokenPath(workspaceRoot: string, file: string): string {
  const id = createHash('sha256').update(file).digest('hex').slice(0, 16);
  return join(dotRoot(workspaceRoot), 'warehouses', `${id}.json`);
}

function inodeOf(file: string): number | undefined {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** The file's current token, made anew when the file is not the one the last build wrote. */
export function duckDbToken(workspaceRoot: string, file: string): string {
  const path = tokenPath(workspaceRoot, file);
  const record = readJson<TokenRecord>(path);
  if (record && (record.inode === undefined || record.inode === inodeOf(file))) return record.token;
  const fresh: TokenRecord = { file, token: randomUUID() };
  // Keys are computed before a build makes `.dot`: its .gitignore must come first.
  ensureDotFolder(workspaceRoot);
  writeJsonAtomically(path, fresh);
  return fresh.token;
}

/** Called after a build wrote the file: from now on, a different file means different data. */
export function rememberDuckDbFile(workspaceRoot: string, file: string): void {
  const path = tokenPath(workspaceRoot, file);
  const record = readJson<TokenRecord>(path);
  const inode = inodeOf(file);
  if (record && record.inode === undefined && inode !== undefined) writeJsonAtomically(path, { ...record, inode });
}
