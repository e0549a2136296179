import { join } from 'node:path';
import { schemasInManifest } from '../dbt/artifacts';
import { adapterFor } from '../dbt/adapters';
import { type DbtCommand } from '../dbt/args';
import { errorMessage, UserError } from '../workspace/errors';
import type { WarehouseConnection } from '../dbt/operation';
import {
  planPromotion,
  promotedViews,
  promotionStatements,
  readPromotionState,
  type PromotionState,
  type PromotedView,
} from './plan';
import { readBuildRecord, type BuildRecord, type RecordedBuild } from '../build/records';
import { quoteIdentifier, quoteLiteral, runInTransaction, runQueries } from '../warehouse/sql';
import type { Reporter } from '../workspace/reporter';

/** Commands that replace relations; `test` and `compile` replace none. */
const REPLACING_COMMANDS: readonly DbtCommand[] = ['build', 'run', 'seed', 'snapshot', 'retry'];

/** A build's schema `<schema>_<id>` and its id: its generation is that schema and its `_<custom>` siblings. */
export interface BuildSchema {
  schema: string;
  buildId: string;
}

/**
 * The name a schema of the build's generation takes while it is retired: `<schema>~<id>…` for
 * `<schema>_<id>…`, the same length, and outside every build's own `<schema>_<id>_*`.
 */
export function retiredName(schema: string, build: BuildSchema): string {
  if (!inGeneration(schema, build.schema)) throw new Error(`${schema} is not a schema of ${build.schema}`);
  const base = build.schema.slice(0, build.schema.length - build.buildId.length - 1);
  return `${base}~${build.buildId}${schema.slice(build.schema.length)}`;
}

/** The retired names of those of `schemas` that are the build's own: what clean drops with them. */
export function retiredNames(schemas: string[], build: BuildSchema): string[] {
  if (!build.schema.endsWith(`_${build.buildId}`)) return [];
  return schemas.filter((schema) => inGeneration(schema, build.schema)).map((schema) => retiredName(schema, build));
}

function inGeneration(schema: string, root: string): boolean {
  return schema === root || schema.startsWith(`${root}_`);
}

/** A view outside the build's schemas that reads a relation in one of them. */
export interface Reader {
  sourceSchema: string;
  viewSchema: string;
  view: string;
}

/** The schemas of the build's generation and of its retired one that exist, and the views outside both that read them. */
export interface GenerationState {
  schemas: string[];
  readers: Reader[];
}

/** Both statements of generationQueries, the same predicate on a name column. */
function inEither(column: string, build: BuildSchema): string {
  const retired = retiredName(build.schema, build);
  return `(${[build.schema, retired]
    .map((root) => `${column} = ${quoteLiteral(root)} or starts_with(${column}, ${quoteLiteral(`${root}_`)})`)
    .join(' or ')})`;
}

/** PostgreSQL: the schemas of both generations, then the views outside them reading their relations. */
export function generationQueries(build: BuildSchema): string[] {
  return [
    `select nspname from pg_namespace where ${inEither('nspname', build)} order by 1`,
    `select distinct source.nspname, viewer.nspname, v.relname
     from pg_depend d
     join pg_rewrite r on r.oid = d.objid
     join pg_class v on v.oid = r.ev_class
     join pg_namespace viewer on viewer.oid = v.relnamespace
     join pg_class t on t.oid = d.refobjid and t.oid <> v.oid
     join pg_namespace source on source.oid = t.relnamespace
     where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
       and ${inEither('source.nspname', build)} and not ${inEither('viewer.nspname', build)}
     order by 1, 2, 3`,
  ];
}

/** A schema moved aside for the rebuild: `from` its own name `to` its retired one. */
export interface Retirement {
  from: string;
  to: string;
}

export interface RetirementPlan {
  /** Run in one transaction before dbt; may be empty. */
  statements: string[];
  /** The generation the views read while dbt builds the new one; absent when nothing outside reads the build. */
  retired?: Retirement[];
}

export interface RebuildRequest {
  build: BuildSchema;
  /** Why the build is partial (see build/contents.ts), or undefined. */
  partial?: string;
  /** The command that rebuilds it in full, for messages. */
  fullCommand: string;
  /** `nx run <project>:<promote target>`, for messages. */
  promoteCommand: string;
}

/**
 * What to do before dbt runs. When views outside the build read its schemas, a full rebuild
 * moves them aside (the views follow, reading by OID) and a partial one is refused. A retired
 * generation that views read is what a rebuild that died left: it stays retired, and what that
 * rebuild left in the build's own schemas is unfinished and dropped. One nothing reads is dropped.
 */
export function planRetirement(state: GenerationState, request: RebuildRequest): RetirementPlan {
  const { build } = request;
  const retiredRoot = retiredName(build.schema, build);
  const own = state.schemas.filter((schema) => inGeneration(schema, build.schema));
  const retired = state.schemas.filter((schema) => inGeneration(schema, retiredRoot));
  const readingOwn = state.readers.filter((reader) => inGeneration(reader.sourceSchema, build.schema));
  const readingRetired = state.readers.filter((reader) => inGeneration(reader.sourceSchema, retiredRoot));
  const reading = readingRetired.length > 0 ? readingRetired : readingOwn;
  if (reading.length === 0) return { statements: retired.map(dropSchema) };
  if (request.partial) throw partialRefusal(reading, request);
  if (readingRetired.length > 0 && readingOwn.length > 0) throw bothReadRefusal(readingOwn, readingRetired, request);
  if (readingRetired.length > 0) {
    return {
      statements: own.map(dropSchema),
      retired: retired.map((to) => ({ from: build.schema + to.slice(retiredRoot.length), to })),
    };
  }
  const renames = own.map((from) => ({ from, to: retiredName(from, build) }));
  return {
    statements: [...retired.map(dropSchema), ...renames.map(renameSchema)],
    retired: renames,
  };
}

function dropSchema(schema: string): string {
  return `drop schema if exists ${quoteIdentifier(schema)} cascade`;
}

function renameSchema({ from, to }: Retirement): string {
  return `alter schema ${quoteIdentifier(from)} rename to ${quoteIdentifier(to)}`;
}

function viewSchemas(readers: Reader[]): string {
  return [...new Set(readers.map((reader) => reader.viewSchema))].sort().join(', ');
}

function partialRefusal(reading: Reader[], request: RebuildRequest): UserError {
  return new UserError(
    `views in ${viewSchemas(reading)} (promoted) read ${request.build.schema}, and a ${request.partial} build would replace some of its relations in place, which PostgreSQL does by dropping them and the views reading them: rebuild it in full (${request.fullCommand}, without ${request.partial}), or promote another build to ${viewSchemas(reading)} first.`,
  );
}

function bothReadRefusal(readingOwn: Reader[], readingRetired: Reader[], request: RebuildRequest): UserError {
  return new UserError(
    `views in ${viewSchemas(readingRetired)} read ${readingRetired[0].sourceSchema}, left by a rebuild that died, while views in ${viewSchemas(readingOwn)} read ${readingOwn[0].sourceSchema}: promote the commit again to ${viewSchemas(readingRetired)} (${request.promoteCommand} --schema=<schema>), then rebuild.`,
  );
}

/** Puts the retired generation back under the build's schemas, dropping what the rebuild made there. */
export function restoreStatements(retired: Retirement[], rebuiltSchemas: string[]): string[] {
  const made = [...new Set([...rebuiltSchemas, ...retired.map((schema) => schema.from)])].sort();
  return [...made.map(dropSchema), ...retired.map(({ from, to }) => renameSchema({ from: to, to: from }))];
}

/** A promotion whose views read the build, as the promotion tables list it. */
export interface Repoint {
  promotedAs: string;
  project: string;
  views: PromotedView[];
}

/**
 * The switch of every promotion reading the build to its new generation, as promote makes it,
 * then the retired generation dropped: one transaction.
 */
export function repointStatements(
  repoints: Repoint[],
  state: PromotionState,
  retired: Retirement[],
  stamp: { commit: string; at: string },
  warehouseType: string,
): string[] {
  const statements = repoints.flatMap(({ promotedAs, project, views }) => {
    const plan = planPromotion(views, state, promotedAs);
    return promotionStatements(plan, state, { ...stamp, project, promotedAs }, warehouseType);
  });
  return [...statements, ...retired.map(({ to }) => dropSchema(to))];
}

/** The promotions whose rows name the build's schemas as their source. */
function promotionsOf(state: PromotionState, build: BuildSchema): { promotedAs: string; project: string }[] {
  const found = new Map<string, string>();
  for (const row of state.rows.filter((candidate) => inGeneration(candidate.sourceSchema, build.schema))) {
    found.set(row.promotedAs, row.project);
  }
  return [...found].sort().map(([promotedAs, project]) => ({ promotedAs, project }));
}

/** The record of an earlier build at this place keeps its promotion: views still read the build. */
export function keepPromotion(record: BuildRecord, recordFile: string): void {
  const promoted = readBuildRecord(recordFile)?.promoted;
  if (promoted?.length) record.promoted = promoted;
}

export interface PromotedRebuild extends RebuildRequest {
  connection: WarehouseConnection;
  warehouseType: string;
  command: DbtCommand;
  /** The build being made: its manifest names the new generation's relations. */
  rebuilt: RecordedBuild;
  reporter: Reporter;
  now: () => Date;
}

/**
 * Reads which views outside the build read its schemas and plans the rebuild (see
 * planRetirement), refusing a partial one: before anything changes, the build's record included.
 * Undefined where dbt's replace does not cascade, or the command replaces nothing.
 */
export async function planRebuild(rebuild: PromotedRebuild): Promise<RetirementPlan | undefined> {
  if (!adapterFor(rebuild.warehouseType).replaceCascades || !REPLACING_COMMANDS.includes(rebuild.command))
    return undefined;
  const [schemas, readers] = await runQueries(
    rebuild.connection,
    generationQueries(rebuild.build),
    `find the views reading ${rebuild.build.schema}`,
  );
  return planRetirement(
    {
      schemas: schemas.rows.map(([schema]) => schema!),
      readers: readers.rows.map(([sourceSchema, viewSchema, view]) => ({
        sourceSchema: sourceSchema!,
        viewSchema: viewSchema!,
        view: view!,
      })),
    },
    rebuild,
  );
}

/**
 * Runs dbt (`run`) so that the views reading the build keep answering: the generation they read
 * is moved aside first (as `plan` says), and once dbt has succeeded they are switched to the
 * new one and the old one is dropped; when dbt fails, is stopped or the switch fails, the old
 * generation goes back under the build's schemas.
 */
export async function keepingPromotedViews<T>(
  rebuild: PromotedRebuild,
  plan: RetirementPlan | undefined,
  run: () => Promise<T>,
  succeeded: (result: T) => boolean,
): Promise<T> {
  if (!plan) return run();
  await runInTransaction(rebuild.connection, plan.statements, `move ${rebuild.build.schema} aside`);
  const retired = plan.retired;
  if (!retired) return run();
  rebuild.reporter.info(
    `• promoted views read ${rebuild.build.schema}: they read it as ${retired.map(({ to }) => to).join(', ')} while dbt builds it again`,
  );
  let result: T;
  let switched: Switched | undefined;
  try {
    result = await run();
    if (succeeded(result)) switched = await repoint(rebuild, retired);
  } catch (error) {
    await restore(rebuild, retired).catch((failure: unknown) => rebuild.reporter.info(`• ${errorMessage(failure)}`));
    throw error;
  }
  if (switched) noteSwitch(rebuild, retired, switched);
  else await restore(rebuild, retired);
  return result;
}

/** The promoted schemas switched to the new generation, and when. */
interface Switched {
  promotedAs: string[];
  at: string;
}

/** Switches the promotions reading the build to its new generation; nothing after the commit can fail. */
async function repoint(rebuild: PromotedRebuild, retired: Retirement[]): Promise<Switched> {
  const { connection, rebuilt } = rebuild;
  let state = await readPromotionState(connection, []);
  const promotions = promotionsOf(state, rebuild.build).map((promotion) => ({
    ...promotion,
    views: promotedViews(rebuilt, promotion.promotedAs).views,
  }));
  const known = new Set(state.relations.map((relation) => relation.schema));
  const places = [...new Set(promotions.flatMap(({ views }) => views.map((view) => view.schema)))];
  if (places.some((schema) => !known.has(schema))) state = await readPromotionState(connection, places);
  const at = rebuild.now().toISOString();
  const statements = repointStatements(
    promotions,
    state,
    retired,
    { commit: rebuilt.record.commit, at },
    rebuild.warehouseType,
  );
  await runInTransaction(connection, statements, `switch the promoted views to the new ${rebuild.build.schema}`);
  return { promotedAs: promotions.map(({ promotedAs }) => promotedAs), at };
}

/** The record's promotions carry the time of the switch, as the promotion tables do. */
function noteSwitch(rebuild: PromotedRebuild, retired: Retirement[], { promotedAs, at }: Switched): void {
  const { record } = rebuild.rebuilt;
  record.promoted = record.promoted?.map((entry) => (promotedAs.includes(entry.schema) ? { ...entry, at } : entry));
  const dropped = retired.map(({ to }) => to).join(', ');
  rebuild.reporter.info(
    promotedAs.length > 0
      ? `• switched the promoted views of ${promotedAs.join(', ')} to the new build; dropped ${dropped}`
      : `• no promotion reads the build any more; dropped ${dropped}`,
  );
}

async function restore(rebuild: PromotedRebuild, retired: Retirement[]): Promise<void> {
  const rebuiltSchemas = schemasInManifest(join(rebuild.rebuilt.paths.targetPath, 'manifest.json')).filter((schema) =>
    inGeneration(schema, rebuild.build.schema),
  );
  await runInTransaction(
    rebuild.connection,
    restoreStatements(retired, rebuiltSchemas),
    `put the previous ${rebuild.build.schema} back`,
  );
  rebuild.reporter.info(
    `• put the previous build back under ${retired.map(({ from }) => from).join(', ')}: the promoted views read it as before`,
  );
}
