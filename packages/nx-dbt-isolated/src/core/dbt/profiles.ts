import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Document, parseDocument } from 'yaml';
import { UserError } from '../workspace/errors';
import { adapterFor, type DbtAdapter } from './adapters';

export const PROFILES_FILE = 'profiles.yml';

export interface ProfilesLookup {
  /** The executor's profilesDir option, already absolute. */
  optionDir?: string;
  /** DBT_PROFILES_DIR from the environment. */
  envDir?: string;
  /** The project folder, which plays the part of dbt's working directory. */
  projectDir: string;
  homeDir: string;
}

/** Finds the folder holding profiles.yml in the order dbt looks for it. */
export function findProfilesDir({ optionDir, envDir, projectDir, homeDir }: ProfilesLookup): string {
  const explicit = optionDir
    ? { dir: optionDir, source: 'the profilesDir option' }
    : envDir
      ? { dir: envDir, source: 'DBT_PROFILES_DIR' }
      : undefined;
  if (explicit) {
    if (existsSync(join(explicit.dir, PROFILES_FILE))) return explicit.dir;
    throw new UserError(
      `no ${PROFILES_FILE} in ${explicit.dir} (from ${explicit.source}): point it at the folder that holds your dbt profiles.`,
    );
  }
  const candidates = [projectDir, join(homeDir, '.dbt')];
  const found = candidates.find((dir) => existsSync(join(dir, PROFILES_FILE)));
  if (found) return found;
  throw new UserError(
    `no ${PROFILES_FILE} in ${candidates.join(' or ')}: create one, or set the profilesDir option or DBT_PROFILES_DIR.`,
  );
}

export interface ProfilesFileRequest {
  workspaceRoot: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  /** The executor's profilesDir option, relative to the workspace root. */
  profilesDir?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
}

/** The profiles.yml a build of the project uses, with relative folders taken from the workspace root. */
export function profilesFileFor(request: ProfilesFileRequest): string {
  const fromRoot = (dir: string | undefined) => (dir ? resolve(request.workspaceRoot, dir) : undefined);
  const dir = findProfilesDir({
    optionDir: fromRoot(request.profilesDir),
    envDir: fromRoot(request.env.DBT_PROFILES_DIR),
    projectDir: join(request.workspaceRoot, request.projectRoot),
    homeDir: request.homeDir,
  });
  return join(dir, PROFILES_FILE);
}

/** The user's profiles.yml that `profilesFileFor` finds, read: where it is and its text. */
export function readProfilesFile(request: ProfilesFileRequest): { file: string; text: string } {
  const file = profilesFileFor(request);
  return { file, text: readFileSync(file, 'utf8') };
}

/** Writes a build's generated profiles.yml, readable by its owner only: it may name secrets' variables. */
export function writeGeneratedProfile(paths: { profilesDir: string }, yaml: string): void {
  mkdirSync(paths.profilesDir, { recursive: true });
  writeFileSync(join(paths.profilesDir, PROFILES_FILE), yaml, { mode: 0o600 });
}

export interface IsolateProfileRequest {
  /** Text of the user's profiles.yml and its path, for messages. */
  text: string;
  file: string;
  profile: string;
  /** The dbt target; the profile's own default when absent. */
  target?: string;
  /** Appended to the target's schema: `<schema>_<suffix>`. */
  suffix: string;
  /** Relative DuckDB paths are taken from here, as dbt run in the project folder would. */
  projectDir: string;
  /** Renders a default target written as `{{ env_var('X', 'dev') }}`. */
  env?: NodeJS.ProcessEnv;
}

/** What a target points at, with `{{ env_var() }}` text left unrendered. */
export interface WarehouseIdentity {
  type: string;
  /** DuckDB: the absolute database path; others: host, port and database. */
  location: string;
}

/** Whether two identities name one warehouse: the same adapter at the same place. */
export function sameWarehouse(a: WarehouseIdentity, b: WarehouseIdentity): boolean {
  return a.type === b.type && a.location === b.location;
}

export interface IsolatedProfile {
  yaml: string;
  target: string;
  baseSchema: string;
  /** `<schema>_<suffix>` as dbt will name it: `{{ env_var() }}` rendered with the request's env. */
  schema: string;
  /** The target's database as dbt names it in the manifest, when the profile tells it. */
  database?: string;
  warehouse: WarehouseIdentity;
}

type Output = Record<string, unknown>;

/**
 * Writes a profiles.yml that holds only the chosen target of the chosen profile, with its
 * schema (BigQuery: dataset) renamed to `<schema>_<suffix>`. Values are copied as text, so
 * `{{ env_var(...) }}` stays for dbt to render and no secret is resolved into the file; only a
 * DuckDB path is rendered, because the writer lock and the isolation check must name the file dbt opens.
 */
export function isolateProfile(request: IsolateProfileRequest): IsolatedProfile {
  const profiles = parseProfiles(request.text, request.file);
  const profile = profiles[request.profile];
  if (!isMap(profile)) {
    const known = Object.keys(profiles).join(', ') || 'none';
    throw new UserError(
      `profile '${request.profile}' is not in ${request.file} (profiles there: ${known}): add it, or fix 'profile:' in dbt_project.yml.`,
    );
  }
  const outputs = isMap(profile.outputs) ? profile.outputs : {};
  const target = request.target ?? defaultTarget(profile.target, request);
  const output = outputs[target];
  if (!isMap(output)) {
    const known = Object.keys(outputs).join(', ') || 'none';
    throw new UserError(
      `target '${target}' is not in profile '${request.profile}' of ${request.file} (targets: ${known}): pass one of them with --target.`,
    );
  }
  const type = String(output.type ?? '');
  const adapter = adapterFor(type);
  const isolated: Output = { ...output };
  const schemaKey = adapter.schemaField(output);
  const baseSchema = schemaOf(output, schemaKey, adapter, `${request.file}: ${request.profile}.outputs.${target}`);
  const schema = `${baseSchema}_${request.suffix}`;
  isolated[schemaKey] = schema;
  const { fileField } = adapter;
  if (fileField) isolated[fileField] = renderedDuckDbPath(output[fileField], request, target);

  const document = new Document({ [request.profile]: { target, outputs: { [target]: isolated } } }, { version: '1.1' });
  if (isMap(profiles.config)) document.set('config', profiles.config);
  return {
    // Quoted strings: PyYAML reads a bare `=` or `<<` as something other than a string.
    yaml: document.toString({ defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' }),
    target,
    baseSchema,
    schema: String(renderEnvVars(schema, request.env ?? {})),
    database: targetDatabase(adapter, isolated, request.env ?? {}),
    warehouse: { type, location: adapter.location(isolated) },
  };
}

/** The profile's `target:`, rendered where it is an `{{ env_var('X', 'default') }}` template. */
function defaultTarget(value: unknown, request: IsolateProfileRequest): string {
  if (value === undefined) return 'default';
  const text = String(value).trim();
  const rendered = String(renderEnvVars(text, request.env ?? {}));
  if (rendered !== '' && !rendered.includes('{{')) return rendered;
  throw new UserError(
    `the default target of profile '${request.profile}' in ${request.file} is a template the plugin cannot render (${text}): pass the target with --target.`,
  );
}

/** `{{ env_var('X') }}`, `{{ env_var("X", "default") }}`, `{{ env_var('PORT') | int }}`. */
const ENV_VAR_CALL = /\{\{\s*env_var\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]*)\3\s*)?\)\s*(?:\|\s*\w+\s*)*\}\}/g;

/** A profile value with its `env_var()` calls rendered as dbt would; other templates stay as text. */
export function renderEnvVars(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value !== 'string') return value;
  return value.replace(
    ENV_VAR_CALL,
    (_match, _quote, name: string, _fallbackQuote, fallback?: string) => env[name] ?? fallback ?? '',
  );
}

/** The targets a profile of profiles.yml defines; none when the file or the profile cannot be read. */
export function targetsOfProfile(text: string, file: string, profile: string): string[] {
  try {
    const outputs = parseProfiles(text, file)[profile];
    return isMap(outputs) && isMap(outputs.outputs) ? Object.keys(outputs.outputs) : [];
  } catch {
    return [];
  }
}

export function parseProfiles(text: string, file: string): Record<string, unknown> {
  // YAML 1.1 with merge keys, as PyYAML reads it for dbt (`<<: *defaults`, `yes`/`no`).
  const document = parseDocument(text, { version: '1.1', merge: true });
  if (document.errors.length > 0) {
    throw new UserError(`${file} is not valid YAML (${document.errors[0].message.split('\n')[0]}): fix the file.`);
  }
  const content = document.toJS({ maxAliasCount: -1 }) as unknown;
  return isMap(content) ? content : {};
}

function schemaOf(output: Output, key: string, adapter: DbtAdapter, where: string): string {
  const value = output[key];
  if (typeof value === 'string' && value !== '') return value;
  if (value === undefined && adapter.defaultSchema !== undefined) return adapter.defaultSchema;
  throw new UserError(`${where} has no '${key}:': isolated builds rename it per commit; add one.`);
}

/** A DuckDB path as dbt will open it: env_var() rendered, absolute; refused when it holds another template. */
function renderedDuckDbPath(path: unknown, request: IsolateProfileRequest, target: string): unknown {
  const rendered = absoluteDuckDbPath(renderEnvVars(path, request.env ?? {}), request.projectDir);
  if (typeof rendered !== 'string' || !rendered.includes('{{')) return rendered;
  throw new UserError(
    `the DuckDB path of target '${target}' in ${request.file} is a template the plugin cannot render (${String(path)}): the writer lock and the isolation check must know the file, so write the path plainly or with {{ env_var() }} only.`,
  );
}

export function absoluteDuckDbPath(path: unknown, projectDir: string): unknown {
  if (path === undefined) return ':memory:';
  if (typeof path === 'string' && path.startsWith('~/')) return join(homedir(), path.slice(2));
  if (typeof path !== 'string' || isInMemoryOrRemote(path) || path.includes('{{') || isAbsolute(path)) {
    return path;
  }
  return resolve(projectDir, path);
}

function isInMemoryOrRemote(path: string): boolean {
  return path.startsWith(':memory:') || /^[a-z][a-z0-9+]*:/i.test(path);
}

/** The target's database, rendered, when the plugin can tell it. */
function targetDatabase(adapter: DbtAdapter, output: Output, env: NodeJS.ProcessEnv): string | undefined {
  const rendered = renderEnvVars(adapter.database(output), env);
  return typeof rendered === 'string' && rendered !== '' && !rendered.includes('{{') ? rendered : undefined;
}

export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The DuckDB file a profile writes to, when it is a local file (the only single-writer case). */
export function duckDbFile(warehouse: WarehouseIdentity): string | undefined {
  if (!adapterFor(warehouse.type).oneWriterAtATime) return undefined;
  const path = warehouse.location;
  return isAbsolute(path) ? path : undefined;
}
