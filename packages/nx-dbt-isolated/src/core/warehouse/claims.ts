import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writesNoRelation } from '../build/contents';
import { markSchemasDropped } from '../cache/key-marks';
import { findDbt } from '../dbt/executable';
import { type HoldEnd, type ParsedRun } from '../dbt/parse-then-run';
import type { BuildPaths } from '../workspace/dot-layout';
import { UserError } from '../workspace/errors';
import { RESULT_PREFIX, runOperation, type WarehouseConnection } from '../dbt/operation';
import { isolateProfile, profilesFileFor, writeGeneratedProfile, type WarehouseIdentity } from '../dbt/profiles';
import { builtHere, readBuildRecord, workspaceId, writeBuildRecord, type BuildRecord } from '../build/records';
import { DROP_MACROS, DROP_RESULT_MACRO, promotedError } from './schema-drop';
import { quoteIdentifier, quoteLiteral } from './sql';
import type { Reporter } from '../workspace/reporter';
import { adapterFor } from '../dbt/adapters';

/**
 * The table in a build's isolated schema listing the workspaces that rely on the schema: the one
 * whose build succeeded there, and those that restored that build from Nx's cache. It lives and
 * dies with the schema, and every clone connected to the warehouse sees it (ADR 20).
 */
export const CLAIMS_TABLE = 'nx_dbt_isolated_claims';

/** One workspace's claim on a build's schemas, as a row of the claims table. */
export interface Claim {
  /** The build's isolated schema, `<schema>_<short_hash>`, which holds the table. */
  schema: string;
  project: string;
  commit: string;
  /** workspaceId() of the claiming workspace, with where it is, for people to read. */
  workspace: string;
  workspacePath: string;
  how: 'built' | 'restored';
}

/** A claim as clean reports it: who else still relies on the schema. */
export interface Claimant {
  workspace: string;
  where: string;
  how: string;
  at: string;
}

/**
 * Builds and cleans serialise, and claims are kept, in warehouses that have session-level locks a
 * dead session gives back: PostgreSQL's advisory locks. DuckDB files are written by one process at
 * a time (duckdb-lock.ts); other warehouses keep the per-workspace rules (docs/reliability.md).
 */
export function keepsClaims(warehouse: WarehouseIdentity): boolean {
  return adapterFor(warehouse.type).rolesAndClaims;
}

/** The advisory lock of one isolated schema, in both forms: waiting for it, and trying once. */
export function schemaLockStatements(schema: string): { lock: string; tryLock: string } {
  const key = `hashtextextended(${quoteLiteral(`nx-dbt-isolated:${schema}`)}, 0)`;
  return { lock: `select pg_advisory_lock(${key})`, tryLock: `select pg_try_advisory_lock(${key})` };
}

function claimsTable(schema: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(CLAIMS_TABLE)}`;
}

/** Makes the schema and its claims table where missing, and replaces the workspace's row with `claim`. */
export function claimStatements(claim: Claim, at: string): string[] {
  const table = claimsTable(claim.schema);
  const row = [claim.workspace, `${hostname()}:${claim.workspacePath}`, claim.project, claim.commit, claim.how, at];
  return [
    `create schema if not exists ${quoteIdentifier(claim.schema)}`,
    `create table if not exists ${table} (workspace_id varchar, workspace_place varchar, project varchar, commit_sha varchar, how varchar, claimed_at varchar)`,
    releaseStatement(claim.schema, claim.workspace, claim.project),
    `insert into ${table} values (${row.map(quoteLiteral).join(', ')})`,
  ];
}

function releaseStatement(schema: string, workspace: string, project: string): string {
  return `delete from ${claimsTable(schema)} where workspace_id = ${quoteLiteral(workspace)} and project = ${quoteLiteral(project)}`;
}

/**
 * What parse-then-run.py holds for a build: the schema's advisory lock for the whole dbt run, in
 * a session that ends with the process, and this workspace's claim written there once the
 * command has succeeded, and `end` at its end. Undefined where the warehouse keeps no claims, and
 * for compile, which writes nothing there.
 */
export function buildHold(
  record: BuildRecord,
  workspaceRoot: string,
  reporter: Reporter,
  end?: HoldEnd,
): ParsedRun['hold'] {
  if (!keepsClaims(record.warehouse) || writesNoRelation(record.command)) return undefined;
  const claim = claimOf(record, workspaceRoot, 'built');
  const hold = {
    ...schemaLockStatements(claim.schema),
    afterSuccess: claimStatements(claim, new Date().toISOString()),
    lockFailure: `could not take the advisory lock of ${claim.schema} that serialises builds of one commit from every workspace, so dbt did not run: check that the profile's user may connect and run pg_advisory_lock, then build again`,
    claimFailure: `dbt succeeded, but this workspace's claim on ${claim.schema} could not be recorded in ${CLAIMS_TABLE}, so another workspace's clean could drop it: check that the profile's user may create tables in ${claim.schema}, then build again`,
    ...end,
  };
  return {
    args: ['--hold', JSON.stringify(hold)],
    onWait: () =>
      reporter.info(
        `waiting for another workspace's build or clean of ${claim.project} at ${claim.commit.slice(0, 12)} into ${claim.schema} (${record.warehouse.location}) to finish`,
      ),
  };
}

/** This workspace's claim on the build of `record`. */
function claimOf(record: BuildRecord, workspaceRoot: string, how: Claim['how']): Claim {
  return {
    schema: record.schema,
    project: record.project,
    commit: record.commit,
    workspace: workspaceId(workspaceRoot),
    workspacePath: workspaceRoot,
    how,
  };
}

const CLAIM_MACRO = 'nx_dbt_isolated_claim';

/** Under the schema's lock: writes the claim only where the schema still exists. */
const CLAIM_MACRO_FILE = `{% macro ${CLAIM_MACRO}(lock, schema, statements) %}
  {% do run_query(lock) %}
  {% set found = adapter.check_schema_exists(target.database, schema) %}
  {% if found %}
    {% for sql in statements %}{% do run_query(sql) %}{% endfor %}
    {% do run_query('commit') %}
  {% endif %}
  {{ print('${RESULT_PREFIX}' ~ tojson({'claimed': found})) }}
{% endmacro %}
`;

/**
 * Claims a build this workspace restored from Nx's cache. False when its schema is gone: the
 * cache entry describes relations that no longer exist.
 */
export async function claimRestoredBuild(connection: WarehouseConnection, claim: Claim): Promise<boolean> {
  const result = (await runOperation(connection, {
    macro: CLAIM_MACRO,
    text: CLAIM_MACRO_FILE,
    args: {
      lock: schemaLockStatements(claim.schema).lock,
      schema: claim.schema,
      statements: claimStatements(claim, new Date().toISOString()),
    },
    failure: (lastLine) =>
      `dbt could not record this workspace's claim on ${claim.schema}, restored from Nx's cache (${lastLine}): check that the warehouse is reachable with ${connection.profilesDir}/profiles.yml, then run the build again.`,
  })) as { claimed: boolean };
  return result.claimed;
}

export interface RestoredBuild {
  workspaceRoot: string;
  /** The dbt project's folder, relative to the workspace root. */
  projectRoot: string;
  paths: BuildPaths;
  /** The isolated-build target's options. */
  profilesDir?: string;
  dbtExecutable?: string;
  env: NodeJS.ProcessEnv;
  homeDir: string;
}

/**
 * After Nx restored a build made in another workspace: claims it in the warehouse, once, and
 * writes the build's generated profile here, which this workspace's clean connects with. Where
 * the schema is gone, removes the restored build, notes the drop in the build key (the next
 * build runs dbt) and throws: the hit must not stand.
 */
export async function claimRestored(build: RestoredBuild): Promise<void> {
  const { workspaceRoot, paths } = build;
  const record = readBuildRecord(paths.buildRecord);
  if (!record?.profile || record.claimedAt !== undefined || !keepsClaims(record.warehouse)) return;
  if (builtHere(record, workspaceId(workspaceRoot))) return;
  const file = profilesFileFor(build);
  const profile = isolateProfile({
    text: readFileSync(file, 'utf8'),
    file,
    profile: record.profile,
    target: record.target,
    suffix: record.buildId,
    projectDir: join(workspaceRoot, build.projectRoot),
    env: build.env,
  });
  writeGeneratedProfile(paths, profile.yaml);
  const connection = {
    workspaceRoot,
    dbt: findDbt(workspaceRoot, build.dbtExecutable, build.env.PATH),
    profilesDir: paths.profilesDir,
    profile: record.profile,
    target: record.target,
    env: build.env,
  };
  const claim = claimOf(record, workspaceRoot, 'restored');
  if (await claimRestoredBuild(connection, claim)) {
    writeBuildRecord(paths.buildRecord, { ...record, claimedAt: new Date().toISOString() });
    return;
  }
  rmSync(paths.buildDir, { recursive: true, force: true });
  markSchemasDropped(workspaceRoot, record.project, record.commit);
  throw goneSchemaError(claim);
}

/** A build a clean would drop, as the release macro takes it. */
export interface ReleasedBuild {
  /** The build's isolated schema, which holds its claims table. */
  schema: string;
  /** Every schema the clean drops when no claim remains. */
  schemas: string[];
  project: string;
  /** Whether this workspace built it: decides alone when no claims table exists (older builds). */
  builtHere: boolean;
}

export interface ReleaseOutcome {
  /** Schemas that existed and were dropped. */
  existing: string[];
  /** Builds kept because other workspaces still claim them, by isolated schema. */
  claimed: Map<string, Claimant[]>;
}

const RELEASE_MACRO = 'nx_dbt_isolated_release_claims';

/**
 * Holding every schema's lock (in sorted order, as builds take one each), removes this
 * workspace's claims, then drops the schemas of each build that no claim is left on, through
 * schema-drop.ts's macro, which refuses to drop what promoted views read.
 */
const RELEASE_MACRO_FILE = `{% macro ${RELEASE_MACRO}(locks, builds) %}
  {% for lock in locks %}{% do run_query(lock) %}{% endfor %}
  {% set droppable = [] %}
  {% set claimed = {} %}
  {% for build in builds %}
    {% if run_query(build.hasTable).rows[0][0] > 0 %}
      {% do run_query(build.release) %}
      {% set others = run_query(build.remaining) %}
      {% if others.rows %}
        {% set rows = [] %}
        {% for row in others.rows %}{% do rows.append([row[0], row[1], row[2], row[3]]) %}{% endfor %}
        {% do claimed.update({build.schema: rows}) %}
      {% else %}
        {% do droppable.extend(build.schemas) %}
      {% endif %}
    {% elif build.builtHere %}
      {% do droppable.extend(build.schemas) %}
    {% else %}
      {% do claimed.update({build.schema: []}) %}
    {% endif %}
  {% endfor %}
  {% do run_query('commit') %}
  {% set dropped = ${DROP_RESULT_MACRO}(droppable, true) %}
  {{ print('${RESULT_PREFIX}' ~ tojson({'existing': dropped.existing, 'promoted': dropped.promoted, 'claimed': claimed})) }}
{% endmacro %}
${DROP_MACROS}`;

/**
 * Releases this workspace's claims on `builds` and drops the schemas no workspace claims any
 * more, in one dbt run holding the schemas' advisory locks: no build or restore in another
 * workspace can claim a schema between the look and the drop.
 */
export async function releaseClaimsAndDrop(
  connection: WarehouseConnection,
  workspace: string,
  builds: ReleasedBuild[],
  promoteCommand: string,
): Promise<ReleaseOutcome> {
  const literal = (text: string) => quoteLiteral(text);
  const result = (await runOperation(connection, {
    macro: RELEASE_MACRO,
    text: RELEASE_MACRO_FILE,
    args: {
      locks: [...new Set(builds.map((build) => build.schema))].sort().map((s) => schemaLockStatements(s).lock),
      builds: builds.map((build) => ({
        schema: build.schema,
        schemas: build.schemas,
        builtHere: build.builtHere,
        hasTable: `select count(*) from information_schema.tables where table_schema = ${literal(build.schema)} and table_name = ${literal(CLAIMS_TABLE)}`,
        release: releaseStatement(build.schema, workspace, build.project),
        remaining: `select workspace_id, workspace_place, how, claimed_at from ${claimsTable(build.schema)} order by claimed_at`,
      })),
    },
    failure: (lastLine) =>
      `dbt could not release this workspace's claims on ${builds.map((build) => build.schema).join(', ')} (${lastLine}): check that the warehouse is reachable with ${connection.profilesDir}/profiles.yml, then run the clean again.`,
  })) as { existing: string[]; promoted: [string, string][]; claimed: Record<string, string[][]> };
  if (result.promoted.length > 0) throw promotedError(result.promoted, promoteCommand);
  const claimed = new Map(
    Object.entries(result.claimed).map(([schema, rows]) => [
      schema,
      rows.map(([workspace, where, how, at]) => ({ workspace, where, how, at })),
    ]),
  );
  return { existing: result.existing, claimed };
}

/** Why a clean kept a build's schemas: the workspaces that still claim them. */
export function claimedReason(claimants: Claimant[]): string {
  if (claimants.length === 0) {
    return 'built by another workspace, which recorded no claim (an older build): clean it there';
  }
  const who = claimants.map((claimant) => `${claimant.where} (${claimant.how} ${claimant.at})`).join(', ');
  return `still claimed by ${claimants.length === 1 ? 'another workspace' : `${claimants.length} other workspaces`}: ${who}`;
}

/** The one line for a hit restored from Nx's cache whose schema is gone from the warehouse. */
function goneSchemaError(claim: Claim): UserError {
  return new UserError(
    `Nx restored the build of ${claim.project} at ${claim.commit.slice(0, 12)} from its cache, but schema ${claim.schema} is gone from the warehouse (dropped outside the plugin, or by a clean that saw no claim on it), so the hit was not kept: run the build again, which now builds the commit.`,
  );
}
