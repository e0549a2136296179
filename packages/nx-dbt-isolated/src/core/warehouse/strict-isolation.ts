import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { readManifestSources, schemasInManifest, type ManifestSource } from '../dbt/artifacts';
import { type HoldEnd } from '../dbt/parse-then-run';
import { UserError } from '../workspace/errors';
import { escapingNodes, type IsolationBounds } from '../build/guard';
import type { WarehouseConnection } from '../dbt/operation';
import type { IsolatedProfile } from '../dbt/profiles';
import { quoteIdentifier, quoteLiteral, runInTransaction } from './sql';
import type { Reporter } from '../workspace/reporter';
import { adapterFor } from '../dbt/adapters';

/**
 * strictIsolation (ADR 21): dbt's command runs as a role of the build's own, which may create
 * only in the build's schemas and read only its sources, so that SQL the isolation guard cannot
 * see (hooks, macros, run_query) fails in the warehouse instead of reaching other schemas.
 * The role lives for one build: afterwards what it made is the profile user's, as without it.
 */

const ROLE_PREFIX = 'nx_dbt_isolated_';
/** PostgreSQL's limit on identifiers, in bytes. */
const MAX_IDENTIFIER = 63;
/** Set on every role the plugin makes: a role without it is never dropped. */
const ROLE_COMMENT = 'made by nx-dbt-isolated for one strictIsolation build, dropped when it ends';

/**
 * `nx_dbt_isolated_<schema>`, kept to lower-case letters, digits and `_` so that it needs no
 * quoting anywhere (PGOPTIONS among them); a hash of the schema keeps names apart when that
 * changed the schema's name or PostgreSQL's 63 bytes cut it short.
 */
export function strictRoleName(schema: string): string {
  const plain = `${ROLE_PREFIX}${schema.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  if (plain === `${ROLE_PREFIX}${schema}` && plain.length <= MAX_IDENTIFIER) return plain;
  const hash = createHash('sha256').update(schema).digest('hex').slice(0, 8);
  return `${plain.slice(0, MAX_IDENTIFIER - hash.length - 1)}_${hash}`;
}

export interface StrictGrants {
  role: string;
  /** The schemas the build writes: created when missing, the role may create in them. */
  schemas: string[];
  /** Relations the role may read: the project's sources. */
  sources: Pick<ManifestSource, 'schema' | 'identifier'>[];
  /** Schemas whose every relation the role may read: a slim build's base. */
  readSchemas: string[];
}

/**
 * The statements, run in one transaction as the profile's user, that make the role (or take
 * back one the plugin made for an earlier, interrupted build) and give it what the build needs.
 * Relations already in the schemas (an earlier build of the commit) become the role's, since
 * dbt replaces a relation by renaming it.
 */
export function grantStatements({ role, schemas, sources, readSchemas }: StrictGrants): string[] {
  const name = quoteIdentifier(role);
  const schemaList = `array[${schemas.map(quoteLiteral).join(', ')}]::text[]`;
  return [
    plpgsql(`
      if not exists (select from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)) then
        raise exception 'strictIsolation makes a role for the build, and % may not create roles: run ALTER ROLE % CREATEROLE as a superuser, or build without strictIsolation', current_user, current_user;
      end if;
      if not exists (select from pg_roles where rolname = ${quoteLiteral(role)}) then
        create role ${name} nologin;
        comment on role ${name} is ${quoteLiteral(ROLE_COMMENT)};
      elsif ${isOurs(role)} is not true then
        raise exception 'strictIsolation would build as role %, which exists and was not made by nx-dbt-isolated: drop or rename that role, or build without strictIsolation', ${quoteLiteral(role)};
      end if;`),
    `grant ${name} to current_user`,
    ...schemas.flatMap((schema) => [
      `create schema if not exists ${quoteIdentifier(schema)}`,
      `grant usage, create on schema ${quoteIdentifier(schema)} to ${name}`,
    ]),
    plpgsql(`
      for item in
        select format('alter %s %s owner to %I', case relkind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table' else 'table' end, c.oid::regclass, ${quoteLiteral(role)}) as sql
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(${schemaList}) and c.relkind in ('r', 'p', 'v', 'm', 'f')
        union all
        select format('alter routine %s owner to %I', p.oid::regprocedure, ${quoteLiteral(role)})
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(${schemaList})
      loop
        execute item.sql;
      end loop;`),
    ...readGrants(name, sources, readSchemas),
  ];
}

/** Read access, for what exists: dbt names a missing source in its own words. */
function readGrants(name: string, sources: StrictGrants['sources'], readSchemas: string[]): string[] {
  const schemas = [...new Set([...sources.map((source) => source.schema), ...readSchemas])].sort();
  const relations = [...new Set(sources.map(({ schema, identifier }) => relationName(schema, identifier)))].sort();
  if (schemas.length === 0) return [];
  const ifExists = (check: string, grant: string) => `if ${check} is not null then ${grant}; end if;`;
  return [
    plpgsql(
      [
        ...schemas.map((schema) =>
          ifExists(
            `to_regnamespace(${quoteLiteral(quoteIdentifier(schema))})`,
            `grant usage on schema ${quoteIdentifier(schema)} to ${name}`,
          ),
        ),
        ...readSchemas.map((schema) =>
          ifExists(
            `to_regnamespace(${quoteLiteral(quoteIdentifier(schema))})`,
            `grant select on all tables in schema ${quoteIdentifier(schema)} to ${name}`,
          ),
        ),
        ...relations.map((relation) =>
          ifExists(`to_regclass(${quoteLiteral(relation)})`, `grant select on ${relation} to ${name}`),
        ),
      ].join('\n'),
    ),
  ];
}

/**
 * What ends the role, as the profile's user: what it made becomes the user's, its grants go, and
 * so does the role, unless it is not one the plugin made.
 */
export function releaseStatements(role: string): string[] {
  const name = quoteIdentifier(role);
  return [
    plpgsql(`
      if ${isOurs(role)} then
        reassign owned by ${name} to current_user;
        drop owned by ${name};
        drop role ${name};
      end if;`),
  ];
}

/**
 * Ends the roles that strictIsolation builds of these schemas left: a build killed while dbt ran
 * (SIGKILL, a lost machine) never reached its own `release`. A role is ended only where the
 * plugin's mark is on it, so a schema whose build left none costs nothing but the statement.
 */
export async function endLeftoverRoles(connection: WarehouseConnection, schemas: string[]): Promise<void> {
  const statements = [...new Set(schemas)].sort().flatMap((schema) => releaseStatements(strictRoleName(schema)));
  await runInTransaction(connection, statements, 'drop the roles of interrupted strictIsolation builds');
}

function isOurs(role: string): string {
  return `(select shobj_description(oid, 'pg_authid') = ${quoteLiteral(ROLE_COMMENT)} from pg_roles where rolname = ${quoteLiteral(role)})`;
}

function relationName(schema: string, identifier: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(identifier)}`;
}

/** A PL/pgSQL block; `item` is there for loops. */
function plpgsql(body: string): string {
  return `do $nx_dbt_isolated$ declare item record; begin ${body.trim()} end $nx_dbt_isolated$`;
}

export interface StrictIsolationRequest {
  profile: IsolatedProfile;
  /** The build's generated profile, with which the plugin's own statements run as the user. */
  connection: WarehouseConnection;
  /** Nodes the isolationExceptions option lets write elsewhere: the role could not. */
  exceptions: string[];
  reporter: Reporter;
}

export interface StrictIsolation {
  role: string;
  /**
   * dbt's environment with the role set for every connection dbt opens, at connection start
   * (libpq's PGOPTIONS): a `set role` inside a transaction, which is what dbt-postgres's `role:`
   * field sends, is undone by the next rollback, and dbt rolls back before running hooks.
   */
  environment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Makes the role and its grants, for the parsed manifest (and a slim build's base manifest). */
  prepare(manifestFile: string, baseManifestFile?: string): Promise<void>;
  /** Ends the role if `prepare` ran (even if it failed), and says whether it did. */
  release(): Promise<boolean>;
  /**
   * The role's end, for the build's hold to run under its lock (see parse-then-run.py): `env` is
   * dbt's environment without the role, which the hold's own session connects with.
   */
  holdEnd(env: NodeJS.ProcessEnv): HoldEnd;
}

/**
 * Refuses strictIsolation where the plugin cannot make a role (any adapter but PostgreSQL) or
 * cannot set it for every connection.
 */
export function strictIsolation({
  profile,
  connection,
  exceptions,
  reporter,
}: StrictIsolationRequest): StrictIsolation {
  if (!adapterFor(profile.warehouse.type).rolesAndClaims) {
    throw new UserError(
      `strictIsolation runs dbt as a role that may create only in the build's schemas, which the plugin can do on PostgreSQL only, and dbt target ${profile.target} is ${profile.warehouse.type || 'of no type'}: build it without strictIsolation.`,
    );
  }
  if (setsSearchPath(profile, connection.profile)) {
    throw new UserError(
      `strictIsolation sets the build's role in PGOPTIONS, which dbt-postgres replaces with its own when the target sets search_path, and dbt target ${profile.target} does: remove search_path from it, or build without strictIsolation.`,
    );
  }
  const role = strictRoleName(profile.schema);
  const bounds: IsolationBounds = { schema: profile.schema, database: profile.database, exceptions: [] };
  let prepared = false;
  return {
    role,
    environment: (env) => ({ ...env, PGOPTIONS: [env.PGOPTIONS, `-c role=${role}`].filter(Boolean).join(' ') }),
    prepare: async (manifestFile, baseManifestFile) => {
      refuseExceptions(manifestFile, bounds, exceptions);
      prepared = true;
      const grants = {
        role,
        schemas: [...new Set([profile.schema, ...schemasInManifest(manifestFile)])].sort(),
        sources: readManifestSources(manifestFile).filter((source) => sameDatabase(source, profile.database)),
        readSchemas: baseManifestFile ? schemasInManifest(baseManifestFile) : [],
      };
      await runInTransaction(connection, grantStatements(grants), `make role ${role} for strictIsolation`);
      reporter.info(
        `• strictIsolation: dbt runs as role ${role}, which may create only in ${grants.schemas.join(', ')} and read ${grants.sources.length} source(s)`,
      );
    },
    release: async () => {
      if (!prepared) return false;
      await runInTransaction(connection, releaseStatements(role), `drop role ${role} after the build`);
      return true;
    },
    holdEnd: (env) => ({
      atEnd: releaseStatements(role),
      atEndFailure: `the build's role ${role} could not be dropped, so it still owns what the build made: run the clean of this build, which drops the roles interrupted builds left`,
      sessionPgOptions: env.PGOPTIONS,
    }),
  };
}

/** dbt-postgres passes `search_path` as libpq's `options`, and libpq then ignores PGOPTIONS. */
function setsSearchPath(profile: IsolatedProfile, profileName: string): boolean {
  const output = parse(profile.yaml, { version: '1.1' })?.[profileName]?.outputs?.[profile.target];
  return output?.search_path !== undefined && output.search_path !== null && output.search_path !== '';
}

/** isolationExceptions lets nodes write outside the build's schemas, where the role cannot. */
function refuseExceptions(manifestFile: string, bounds: IsolationBounds, exceptions: string[]): void {
  if (exceptions.length === 0) return;
  const escaping = escapingNodes(manifestFile, bounds);
  if (escaping.length === 0) return;
  const listed = escaping.map(({ uniqueId, writesTo }) => `${uniqueId} → ${writesTo}`).join(', ');
  throw new UserError(
    `strictIsolation lets dbt create only in ${bounds.schema} and ${bounds.schema}_*, and isolationExceptions lets ${listed} write elsewhere: build with one of the two options, not both.`,
  );
}

/** PostgreSQL reads no other database in a query: a source there stays dbt's to report. */
function sameDatabase(source: ManifestSource, database: string | undefined): boolean {
  return !source.database || !database || source.database.toLowerCase() === database.toLowerCase();
}

/**
 * Runs `work` (dbt's command) and ends the role after it, whatever happened, unless the build's
 * hold ended it already. When the build failed already, a failure to end the role is said but
 * does not hide why the build failed.
 */
export async function releasingRole<T extends { ended: boolean }>(
  strict: StrictIsolation | undefined,
  reporter: Reporter,
  work: () => Promise<T>,
): Promise<T> {
  if (!strict) return work();
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await strict.release().catch((releaseError: Error) => reporter.info(`• ${releaseError.message}`));
    throw error;
  }
  if (result.ended || (await strict.release())) {
    reporter.info(`• strictIsolation: role ${strict.role} dropped; what it built belongs to the profile's user`);
  }
  return result;
}
