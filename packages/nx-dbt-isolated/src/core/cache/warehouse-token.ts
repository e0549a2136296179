import { statSync } from 'node:fs';
import { readJson, writeJsonAtomically } from '../workspace/files';
import { isAbsolute, join, relative } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { dotRoot, ensureDotFolder } from '../workspace/dot-layout';
import { adapterFor } from '../dbt/adapters';
import { absoluteDuckDbPath, isMap, parseProfiles, renderEnvVars } from '../dbt/profiles';

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

/** A DuckDB file's token: read only (the key), or made where missing (issueDuckDbTokens). */
type TokenOf = (workspaceRoot: string, file: string) => string | undefined;

/**
 * Where the build's target points, rendered: a change of host, database, schema or DuckDB file
 * changes it; key order, comments, passwords, thread counts and other targets do not. Every
 * target of every profile when the profile is not known. `undefined` when a location is a
 * template other than env_var, which the plugin cannot render, or a DuckDB file has no token yet
 * (issueDuckDbTokens makes them): such a build must not be cached. Reads, never writes.
 */
export function warehouseLocations(request: WarehouseKeyRequest): unknown {
  let tokenless = false;
  const locations = locate(request, (workspaceRoot, file) => {
    const token = currentDuckDbToken(workspaceRoot, file);
    tokenless ||= token === undefined;
    return token;
  });
  return tokenless || JSON.stringify(locations).includes('{{') ? undefined : locations;
}

/**
 * Makes a token for each DuckDB file the build's target may write that has none, or one for a
 * file since replaced. Runs before a build is keyed: a token is new by design (a fresh random
 * one, so another clone's file or a deleted one never matches this clone's builds), so the key,
 * which only reads, cannot make it.
 */
export function issueDuckDbTokens(request: WarehouseKeyRequest): void {
  locate(request, issueDuckDbToken);
}

function locate(request: WarehouseKeyRequest, tokenOf: TokenOf): unknown {
  const profiles = parseProfiles(request.profilesText, request.profilesFile);
  const profile = request.profile === undefined ? undefined : profiles[request.profile];
  return isMap(profile) ? targetLocation(profile, request, tokenOf) : everyLocation(profiles, request, tokenOf);
}

function targetLocation(profile: Record<string, unknown>, request: WarehouseKeyRequest, tokenOf: TokenOf): unknown {
  const target = request.target ?? renderEnvVars(profile.target, request.env) ?? 'default';
  const output = isMap(profile.outputs) ? profile.outputs[String(target)] : undefined;
  return {
    profile: request.profile,
    target,
    location: isMap(output) ? outputLocation(output, request, tokenOf) : null,
  };
}

function everyLocation(profiles: Record<string, unknown>, request: WarehouseKeyRequest, tokenOf: TokenOf): unknown {
  const locations: Record<string, unknown> = {};
  for (const [name, profile] of Object.entries(profiles).sort()) {
    if (!isMap(profile) || !isMap(profile.outputs)) continue;
    const targets: Record<string, unknown> = { '(default)': renderEnvVars(profile.target, request.env) };
    for (const [target, output] of Object.entries(profile.outputs).sort()) {
      if (isMap(output)) targets[target] = outputLocation(output, request, tokenOf);
    }
    locations[name] = targets;
  }
  return locations;
}

function outputLocation(
  output: Record<string, unknown>,
  request: WarehouseKeyRequest,
  tokenOf: TokenOf,
): Record<string, unknown> {
  const location: Record<string, unknown> = {};
  if (output.type !== undefined) location.type = renderEnvVars(output.type, request.env);
  const adapter = adapterFor(String(location.type ?? ''));
  for (const field of adapter.locationFields) {
    if (output[field] !== undefined) location[field] = renderEnvVars(output[field], request.env);
  }
  const { fileField } = adapter;
  if (fileField) location[fileField] = fileLocation(location[fileField], request, tokenOf);
  return location;
}

/**
 * A local database file is named by its path inside the workspace, so clones at other paths
 * agree, plus a token that changes whenever the file itself is new: another clone's file, or
 * one that was deleted, does not hold this clone's builds.
 */
function fileLocation(path: unknown, request: WarehouseKeyRequest, tokenOf: TokenOf): unknown {
  const file = absoluteDuckDbPath(path, request.projectDir);
  if (typeof file !== 'string' || !isAbsolute(file)) return file;
  const inWorkspace = relative(request.workspaceRoot, file);
  const shown = inWorkspace.startsWith('..') ? file : inWorkspace;
  return { file: shown, token: tokenOf(request.workspaceRoot, file) };
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

/** The token of the file, if it has one and the file is still the one the last build wrote. */
export function currentDuckDbToken(workspaceRoot: string, file: string): string | undefined {
  const record = readJson<TokenRecord>(tokenPath(workspaceRoot, file));
  if (record && (record.inode === undefined || record.inode === inodeOf(file))) return record.token;
  return undefined;
}

/** The file's current token, made anew when the file is not the one the last build wrote. */
export function issueDuckDbToken(workspaceRoot: string, file: string): string {
  const current = currentDuckDbToken(workspaceRoot, file);
  if (current !== undefined) return current;
  const fresh: TokenRecord = { file, token: randomUUID() };
  // Tokens are made before a build makes `.dot`: its .gitignore must come first.
  ensureDotFolder(workspaceRoot);
  writeJsonAtomically(tokenPath(workspaceRoot, file), fresh);
  return fresh.token;
}

/** Called after a build wrote the file: from now on, a different file means different data. */
export function rememberDuckDbFile(workspaceRoot: string, file: string): void {
  const path = tokenPath(workspaceRoot, file);
  const record = readJson<TokenRecord>(path);
  const inode = inodeOf(file);
  if (record && record.inode === undefined && inode !== undefined) writeJsonAtomically(path, { ...record, inode });
}
