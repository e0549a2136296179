import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { commitBeside } from '../../fixture-workspace/repo';
import { outcome, SUCCEEDED } from '../support/outcome';
import { dropSchemasStartingWith } from '../support/postgres';
import {
  filesUnder,
  hasBuildRecord,
  jsonObjectIn,
  readBuildRecord,
  runNxSplit,
  type SplitNxResult,
} from '../support/workflows';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';

/**
 * `nx run analytics:diff`: two commits whose differences are known in advance (e2e/fixtures/diff:
 * changed values, NULLs, added/removed/retyped columns, a duplicated key, a NULL key, repeated
 * rows, an added and a removed model), and the fixture's own v1.0 → "exclude returned" change.
 * The numbers below are counted by hand from the literal rows of the fixture.
 */

const short = (sha: string) => sha.slice(0, 8);
const FIXTURE = join(__dirname, '..', 'fixtures', 'diff');

/** nx exited 0; when it did not, the failure shows the end of its output. */
const expectSuccess = (result: SplitNxResult) => expect(outcome(result)).toEqual(SUCCEEDED);

interface Column {
  name: string;
  type: string;
}
interface DataEntry {
  node: string;
  name: string;
  change: string;
  base: { relation: string; rows: number } | null;
  head: { relation: string; rows: number } | null;
  columns?: { added: Column[]; removed: Column[]; typeChanged: { name: string; base: string; head: string }[] };
  comparison?: { mode: string; key?: string; matched: number; onlyInBase: number; onlyInHead: number; note?: string };
  valueDifferences?: Record<string, number>;
}
interface DiffReport {
  project: string;
  target: string;
  base: { ref: string; commit: string; schema: string };
  head: { ref: string; commit: string; schema: string };
  nodes: { added: string[]; removed: string[]; modified: string[] };
  downstream: Record<string, string[]>;
  data: DataEntry[];
}

/** Column types as each warehouse names them. */
const INTEGER = expect.stringMatching(/^(integer|int4?)$/i);
const TEXT = expect.stringMatching(/^(varchar|text|character varying)(\(\d+\))?$/i);
const NO_COLUMN_CHANGES = { added: [], removed: [], typeChanged: [] };

/**
 * The fields of an entry the spec fixes: all of them for a modified or selected node, the sides
 * only for an added or removed one. In key mode the key's own count (always 0 on matched rows)
 * may be given or left out: it is left out here.
 */
function specified(entry: DataEntry): Partial<DataEntry> {
  const { node, name, change, base, head } = entry;
  if (change === 'added' || change === 'removed') return { node, name, change, base, head };
  const valueDifferences = { ...entry.valueDifferences };
  const key = entry.comparison?.key;
  if (key !== undefined && valueDifferences[key] === 0) delete valueDifferences[key];
  return { ...entry, valueDifferences };
}

/** downstream without the nodes that have none. */
const withChildren = (downstream: Record<string, string[]>) =>
  Object.fromEntries(Object.entries(downstream).filter(([, children]) => children.length > 0));

const side = (schema: string, name: string, rows: number) => ({
  relation: expect.stringMatching(new RegExp(`"${schema}"\\."${name}"$`)),
  rows,
});

interface Variant {
  /** dbt target of the profile. */
  dbtTarget: 'dev' | 'pg';
  /** The dbt target's schema: builds land in `<schema>_<id>`. */
  schema: string;
  env: NodeJS.ProcessEnv;
  cleanUp(): Promise<void>;
}

const pgSchema = `nxdbt_diff_${randomBytes(4).toString('hex')}`;
const VARIANTS: [string, Variant][] = [
  ['DuckDB (dbt target dev)', { dbtTarget: 'dev', schema: 'analytics', env: {}, cleanUp: async () => undefined }],
  [
    'PostgreSQL (dbt target pg)',
    {
      dbtTarget: 'pg',
      schema: pgSchema,
      env: { ANALYTICS_PG_SCHEMA: pgSchema },
      cleanUp: () => dropSchemasStartingWith(pgSchema),
    },
  ],
];

/**
 * One workspace for both warehouses: builds are kept per dbt target, so neither variant sees
 * the other's builds; they share only the checkouts and their dbt deps, which are the same.
 */
let ws: TestWorkspace;
/** main plus the diff models (fixtures/diff/base). */
let base: string;
/** base with fixtures/diff/head over it, and diff_removed.sql gone. */
let head: string;

beforeAll(() => {
  ws = createTestWorkspace();
  base = commitBeside(ws.dir, ws.main, 'diff-base', 'Diff models', filesUnder(join(FIXTURE, 'base')));
  head = commitBeside(ws.dir, base, 'diff-head', 'Diff models changed', filesUnder(join(FIXTURE, 'head')), [
    'analytics/models/diff/diff_removed.sql',
  ]);
});
afterAll(() => ws?.remove());

describe.each(VARIANTS)('diff of two commits on %s', (_label, variant) => {
  const targetArgs = variant.dbtTarget === 'dev' ? [] : [`--target=${variant.dbtTarget}`];
  const diff = (...args: string[]) =>
    runNxSplit(ws.dir, ['run', 'analytics:diff', ...args, ...targetArgs], variant.env);
  const schemaOf = (commit: string) => `${variant.schema}_${short(commit)}`;
  const reportFile = (from: string, to: string, extension: 'json' | 'md') =>
    join(ws.dir, '.dot', 'diffs', 'analytics', `${short(from)}..${short(to)}.${extension}`);

  // The report files are named by commits, not by dbt target: the other variant's must not stand in for this one's.
  beforeAll(() => rmSync(join(ws.dir, '.dot', 'diffs'), { recursive: true, force: true }));
  afterAll(() => variant.cleanUp());

  it('builds both commits first, then prints the JSON report, and only it, on stdout', async () => {
    expect(hasBuildRecord(ws.dir, base, variant.dbtTarget)).toBe(false);
    expect(hasBuildRecord(ws.dir, head, variant.dbtTarget)).toBe(false);

    const result = await diff('--base=diff-base', '--head=diff-head', '--format=json');
    expectSuccess(result);
    // Both sides got a full build: the nested builds' output went to stderr, not stdout.
    for (const commit of [base, head]) {
      const record = readBuildRecord(ws.dir, commit, variant.dbtTarget);
      expect(record).toMatchObject({ commit, status: 'succeeded', schema: schemaOf(commit) });
      expect(record.deferredTo).toBeUndefined();
    }
    expect(result.stderr).toContain('Running with dbt');
    expect(result.stdout).not.toContain('Running with dbt');

    const report = jsonObjectIn(result.stdout) as DiffReport;
    expect({ project: report.project, target: report.target, base: report.base, head: report.head }).toEqual({
      project: 'analytics',
      target: variant.dbtTarget,
      base: { ref: 'diff-base', commit: base, schema: schemaOf(base) },
      head: { ref: 'diff-head', commit: head, schema: schemaOf(head) },
    });
    expect(report.nodes).toEqual({
      added: ['model.analytics.diff_added'],
      removed: ['model.analytics.diff_removed'],
      modified: [
        'model.analytics.diff_columns',
        'model.analytics.diff_dupes',
        'model.analytics.diff_multiset',
        'model.analytics.diff_nullkey',
        'model.analytics.diff_same',
        'model.analytics.diff_values',
      ],
    });
    // Every transitive child that is not a test; diff_values' unique/not_null tests are left out.
    expect(withChildren(report.downstream)).toEqual({
      'model.analytics.diff_values': ['model.analytics.diff_values_child', 'model.analytics.diff_values_grandchild'],
    });

    const b = schemaOf(base);
    const h = schemaOf(head);
    expect(report.data.map(specified)).toEqual([
      {
        node: 'model.analytics.diff_added',
        name: 'diff_added',
        change: 'added',
        base: null,
        head: side(h, 'diff_added', 2),
      },
      {
        node: 'model.analytics.diff_columns',
        name: 'diff_columns',
        change: 'modified',
        base: side(b, 'diff_columns', 3),
        head: side(h, 'diff_columns', 3),
        columns: {
          added: [{ name: 'd', type: INTEGER }],
          removed: [{ name: 'b', type: TEXT }],
          typeChanged: [{ name: 'a', base: INTEGER, head: TEXT }],
        },
        comparison: { mode: 'key', key: 'id', matched: 3, onlyInBase: 0, onlyInHead: 0 },
        // a is compared as text: '20' → '21' differs, '10' and '30' do not; c: 300 → 301.
        valueDifferences: { a: 1, c: 1 },
      },
      {
        node: 'model.analytics.diff_dupes',
        name: 'diff_dupes',
        change: 'modified',
        base: side(b, 'diff_dupes', 3),
        head: side(h, 'diff_dupes', 4),
        columns: NO_COLUMN_CHANGES,
        comparison: {
          mode: 'multiset',
          matched: 3,
          onlyInBase: 0,
          onlyInHead: 1,
          note: expect.stringMatching(/^id is not unique in head \(1 duplicated value\).*multiset/),
        },
        valueDifferences: { id: 1, name: 1 },
      },
      {
        node: 'model.analytics.diff_multiset',
        name: 'diff_multiset',
        change: 'modified',
        base: side(b, 'diff_multiset', 5),
        head: side(h, 'diff_multiset', 6),
        columns: NO_COLUMN_CHANGES,
        // No unique test: multisets, with no note. Matched: ('x',1), ('y',2), ('n',NULL).
        comparison: { mode: 'multiset', matched: 3, onlyInBase: 2, onlyInHead: 3 },
        // k: x 2→1, y 1→2, w 0→1; v: 1 2→1, 2 1→2, 3 1→0, 4 0→1, NULL 1→2.
        valueDifferences: { k: 3, v: 5 },
      },
      {
        node: 'model.analytics.diff_nullkey',
        name: 'diff_nullkey',
        change: 'modified',
        base: side(b, 'diff_nullkey', 3),
        head: side(h, 'diff_nullkey', 3),
        columns: NO_COLUMN_CHANGES,
        comparison: {
          mode: 'multiset',
          matched: 2,
          onlyInBase: 1,
          onlyInHead: 1,
          note: expect.stringMatching(/^id\b.*null.*multiset/i),
        },
        // id: 3 1→0, NULL 0→1.
        valueDifferences: { id: 2, name: 0 },
      },
      {
        node: 'model.analytics.diff_removed',
        name: 'diff_removed',
        change: 'removed',
        base: side(b, 'diff_removed', 1),
        head: null,
      },
      {
        node: 'model.analytics.diff_same',
        name: 'diff_same',
        change: 'modified',
        base: side(b, 'diff_same', 2),
        head: side(h, 'diff_same', 2),
        columns: NO_COLUMN_CHANGES,
        comparison: { mode: 'multiset', matched: 2, onlyInBase: 0, onlyInHead: 0 },
        valueDifferences: { id: 0, label: 0 },
      },
      {
        node: 'model.analytics.diff_values',
        name: 'diff_values',
        change: 'modified',
        base: side(b, 'diff_values', 7),
        head: side(h, 'diff_values', 7),
        columns: NO_COLUMN_CHANGES,
        comparison: { mode: 'key', key: 'id', matched: 6, onlyInBase: 1, onlyInHead: 1 },
        // amount: 20 → 25 and 40 → NULL (8's NULL → NULL is no difference); status: closed → open, open → NULL.
        valueDifferences: { amount: 2, status: 2 },
      },
    ]);

    // The same report is on disk, with its Markdown twin.
    expect(JSON.parse(readFileSync(reportFile(base, head, 'json'), 'utf8'))).toEqual(report);
    const markdown = readFileSync(reportFile(base, head, 'md'), 'utf8');
    for (const name of ['diff_added', 'diff_columns', 'diff_dupes', 'diff_removed', 'diff_values']) {
      expect(markdown).toContain(name);
    }
  });

  it('prints a table and the report paths by default, and the Markdown with --format=markdown', async () => {
    const table = await diff('--base=diff-base', '--head=diff-head');
    expectSuccess(table);
    // Both built already: no build this time.
    expect(table.output).not.toContain('Running with dbt');
    for (const name of ['diff_added', 'diff_columns', 'diff_dupes', 'diff_multiset', 'diff_removed', 'diff_values']) {
      expect(table.stdout).toContain(name);
    }
    expect(table.stdout).toContain(`diffs/analytics/${short(base)}..${short(head)}.md`);
    expect(table.stdout).toContain(`diffs/analytics/${short(base)}..${short(head)}.json`);
    expect(() => jsonObjectIn(table.stdout)).toThrow();

    const markdown = await diff('--base=diff-base', '--head=diff-head', '--format=markdown');
    expectSuccess(markdown);
    const written = readFileSync(reportFile(base, head, 'md'), 'utf8');
    const lines = written.split('\n').filter((line) => line.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(markdown.stdout).toContain(line);
    // A Markdown table.
    expect(lines.some((line) => /^\|.*\|$/.test(line.trim()))).toBe(true);
  });

  it("reports v1.0 → 'exclude returned': stg_orders loses the returned orders, --select adds unchanged models", async () => {
    expect(hasBuildRecord(ws.dir, ws.v1, variant.dbtTarget)).toBe(false);
    const result = await diff(
      '--base=v1.0',
      `--head=${ws.excludeReturned}`,
      '--select=orders,customers',
      '--format=json',
    );
    expectSuccess(result);
    const report = jsonObjectIn(result.stdout) as DiffReport;
    const b = schemaOf(ws.v1);
    const h = schemaOf(ws.excludeReturned);
    expect({ base: report.base, head: report.head }).toEqual({
      base: { ref: 'v1.0', commit: ws.v1, schema: b },
      head: { ref: ws.excludeReturned, commit: ws.excludeReturned, schema: h },
    });
    expect(report.nodes).toEqual({ added: [], removed: [], modified: ['model.analytics.stg_orders'] });
    expect(withChildren(report.downstream)).toEqual({
      'model.analytics.stg_orders': [
        'model.analytics.countries',
        'model.analytics.customer_averages',
        'model.analytics.customers',
        'model.analytics.daily_revenue',
        'model.analytics.orders',
      ],
    });
    expect(report.data.map(specified)).toEqual([
      {
        node: 'model.analytics.customers',
        name: 'customers',
        change: 'selected',
        base: side(b, 'customers', 6),
        head: side(h, 'customers', 6),
        columns: NO_COLUMN_CHANGES,
        comparison: { mode: 'key', key: 'customer_id', matched: 6, onlyInBase: 0, onlyInHead: 0 },
        // Customers 2 and 5 each lose a returned order: 27.00 → 22.00 and 95.00 → 70.00.
        valueDifferences: { full_name: 0, country: 0, order_count: 2, lifetime_value: 2 },
      },
      {
        node: 'model.analytics.orders',
        name: 'orders',
        change: 'selected',
        base: side(b, 'orders', 10),
        head: side(h, 'orders', 8),
        columns: NO_COLUMN_CHANGES,
        comparison: { mode: 'key', key: 'order_id', matched: 8, onlyInBase: 2, onlyInHead: 0 },
        valueDifferences: { customer_id: 0, order_date: 0, status: 0, amount: 0 },
      },
      {
        node: 'model.analytics.stg_orders',
        name: 'stg_orders',
        change: 'modified',
        base: side(b, 'stg_orders', 10),
        head: side(h, 'stg_orders', 8),
        columns: NO_COLUMN_CHANGES,
        comparison: { mode: 'key', key: 'order_id', matched: 8, onlyInBase: 2, onlyInHead: 0 },
        valueDifferences: { customer_id: 0, order_date: 0, status: 0 },
      },
    ]);
    expect(existsSync(reportFile(ws.v1, ws.excludeReturned, 'json'))).toBe(true);
    expect(existsSync(reportFile(ws.v1, ws.excludeReturned, 'md'))).toBe(true);
  });
});
