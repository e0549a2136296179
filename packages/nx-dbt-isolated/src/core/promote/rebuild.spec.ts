import { UserError } from '../workspace/errors';
import {
  planRetirement,
  repointStatements,
  restoreStatements,
  retiredName,
  retiredNames,
  type GenerationState,
  type Reader,
} from './rebuild';
import { thrown } from '../testing/thrown';

const BUILD = { schema: 'analytics_pg_abcd1234', buildId: 'abcd1234' };
const OWN = ['analytics_pg_abcd1234', 'analytics_pg_abcd1234_finance', 'analytics_pg_abcd1234_raw'];
const RETIRED = ['analytics_pg~abcd1234', 'analytics_pg~abcd1234_finance', 'analytics_pg~abcd1234_raw'];
const request = {
  build: BUILD,
  fullCommand: 'nx run analytics:isolated-build --ref=main',
  promoteCommand: 'nx run analytics:promote',
};
const reader = (sourceSchema: string, viewSchema = 'analytics_pg', view = 'orders'): Reader => ({
  sourceSchema,
  viewSchema,
  view,
});

describe('retiredName', () => {
  it('keeps the length and leaves every build’s own <schema>_<id>_* space', () => {
    expect(OWN.map((schema) => retiredName(schema, BUILD))).toEqual(RETIRED);
    for (const name of RETIRED) {
      expect(name).toHaveLength(OWN[RETIRED.indexOf(name)].length);
      expect(name === BUILD.schema || name.startsWith(`${BUILD.schema}_`)).toBe(false);
    }
  });

  it('names only the build’s own schemas for clean, and none for a record whose schema is not <schema>_<id>', () => {
    expect(retiredNames([...OWN, 'analytics_pg', 'exports'], BUILD)).toEqual(RETIRED);
    expect(retiredNames(['{{ env_var("S") }}'], { schema: '{{ env_var("S") }}', buildId: 'abcd1234' })).toEqual([]);
  });
});

describe('planRetirement', () => {
  const state = (schemas: string[], readers: Reader[]): GenerationState => ({ schemas, readers });

  it('does nothing when no view outside the build reads it', () => {
    expect(planRetirement(state(OWN, []), request)).toEqual({ statements: [] });
    expect(planRetirement(state(OWN, []), { ...request, partial: '--select' })).toEqual({ statements: [] });
  });

  it('moves every schema of the build aside when promoted views read one of them', () => {
    expect(planRetirement(state(OWN, [reader(OWN[0]), reader(OWN[1], 'analytics_pg_finance')]), request)).toEqual({
      statements: [
        'alter schema "analytics_pg_abcd1234" rename to "analytics_pg~abcd1234"',
        'alter schema "analytics_pg_abcd1234_finance" rename to "analytics_pg~abcd1234_finance"',
        'alter schema "analytics_pg_abcd1234_raw" rename to "analytics_pg~abcd1234_raw"',
      ],
      retired: OWN.map((from, index) => ({ from, to: RETIRED[index] })),
    });
  });

  it('refuses a partial rebuild of a build views read, naming the views’ schemas and the full rebuild', () => {
    const error = thrown(() =>
      planRetirement(state(OWN, [reader(OWN[0]), reader(OWN[2], 'analytics_pg_raw')]), {
        ...request,
        partial: '--select',
      }),
    );
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      'views in analytics_pg, analytics_pg_raw (promoted) read analytics_pg_abcd1234, and a --select build would replace some of its relations in place, which PostgreSQL does by dropping them and the views reading them: rebuild it in full (nx run analytics:isolated-build --ref=main, without --select), or promote another build to analytics_pg, analytics_pg_raw first.',
    );
  });

  it('after a rebuild that died: keeps the retired generation the views read, drops what it left unfinished', () => {
    const plan = planRetirement(state([...OWN.slice(0, 2), ...RETIRED], [reader(RETIRED[0])]), request);
    expect(plan).toEqual({
      statements: [
        'drop schema if exists "analytics_pg_abcd1234" cascade',
        'drop schema if exists "analytics_pg_abcd1234_finance" cascade',
      ],
      retired: OWN.map((from, index) => ({ from, to: RETIRED[index] })),
    });
  });

  it('drops a retired generation nothing reads (a rebuild died after the views moved on)', () => {
    expect(planRetirement(state([...OWN, ...RETIRED], [reader(OWN[0])]), request)).toEqual({
      statements: [
        ...RETIRED.map((schema) => `drop schema if exists "${schema}" cascade`),
        ...OWN.map((schema, index) => `alter schema "${schema}" rename to "${RETIRED[index]}"`),
      ],
      retired: OWN.map((from, index) => ({ from, to: RETIRED[index] })),
    });
    expect(planRetirement(state(RETIRED, []), request)).toEqual({
      statements: RETIRED.map((schema) => `drop schema if exists "${schema}" cascade`),
    });
  });

  it('refuses when views read both generations', () => {
    const error = thrown(() =>
      planRetirement(
        state([...OWN, ...RETIRED], [reader(OWN[0], 'live'), reader(RETIRED[0], 'analytics_pg')]),
        request,
      ),
    );
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(/^views in analytics_pg read analytics_pg~abcd1234, left by a rebuild that died/);
  });

  it('names the promote target as the plugin options call it', () => {
    const error = thrown(() =>
      planRetirement(state([...OWN, ...RETIRED], [reader(OWN[0], 'live'), reader(RETIRED[0], 'analytics_pg')]), {
        ...request,
        promoteCommand: 'nx run analytics:publish',
      }),
    );
    expect(error.message).toContain(
      'promote the commit again to analytics_pg (nx run analytics:publish --schema=<schema>), then rebuild.',
    );
  });
});

describe('restoreStatements', () => {
  it('drops what the rebuild made, then renames the retired generation back, in that order', () => {
    const retired = OWN.slice(0, 2).map((from, index) => ({ from, to: RETIRED[index] }));
    expect(restoreStatements(retired, [OWN[0], 'analytics_pg_abcd1234_new'])).toEqual([
      'drop schema if exists "analytics_pg_abcd1234" cascade',
      'drop schema if exists "analytics_pg_abcd1234_finance" cascade',
      'drop schema if exists "analytics_pg_abcd1234_new" cascade',
      'alter schema "analytics_pg~abcd1234" rename to "analytics_pg_abcd1234"',
      'alter schema "analytics_pg~abcd1234_finance" rename to "analytics_pg_abcd1234_finance"',
    ]);
  });
});

describe('repointStatements', () => {
  it('switches each promotion as promote does, then drops the retired generation', () => {
    const statements = repointStatements(
      [
        {
          promotedAs: 'analytics_pg',
          project: 'analytics',
          views: [{ schema: 'analytics_pg', name: 'orders', sourceSchema: OWN[0] }],
        },
      ],
      {
        relations: [{ schema: 'analytics_pg', name: 'orders', type: 'VIEW' }],
        rows: [
          {
            schema: 'analytics_pg',
            view: 'orders',
            sourceSchema: OWN[0],
            commit: 'c'.repeat(40),
            project: 'analytics',
            promotedAs: 'analytics_pg',
          },
        ],
      },
      [{ from: OWN[0], to: RETIRED[0] }],
      { commit: 'c'.repeat(40), at: '2026-12-01T00:00:00.000Z' },
      'postgres',
    );
    expect(statements[0]).toMatch(/lock table "analytics_pg"\."orders" in access exclusive mode nowait/);
    expect(statements.slice(1)).toEqual([
      'create schema if not exists "analytics_pg"',
      expect.stringMatching(/^create table if not exists "analytics_pg"\."nx_dbt_isolated_promotion"/),
      'drop view if exists "analytics_pg"."orders"',
      'create view "analytics_pg"."orders" as select * from "analytics_pg_abcd1234"."orders"',
      `delete from "analytics_pg"."nx_dbt_isolated_promotion" where promoted_as = 'analytics_pg'`,
      `insert into "analytics_pg"."nx_dbt_isolated_promotion" values ('orders', 'analytics_pg_abcd1234', '${'c'.repeat(40)}', 'analytics', 'analytics_pg', '2026-12-01T00:00:00.000Z')`,
      'drop schema if exists "analytics_pg~abcd1234" cascade',
    ]);
  });
});
