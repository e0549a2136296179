import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { schemasIn } from '../support/duckdb';
import { git } from '../../fixture-workspace/repo';
import { createTestWorkspace, type TestWorkspace } from '../../fixture-workspace/workspace';

const short = (sha: string) => sha.slice(0, 8);

/** Returns custom schemas bare, as many production setups do: finance models land in `finance`. */
const BARE_CUSTOM_SCHEMA = `{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}`;

interface EscapeCase {
  name: string;
  /** Files written (or, for dbt_project.yml, appended to) in the workspace, relative to it. */
  files: Record<string, string>;
  append?: Record<string, string>;
  /** Nodes the refusal must name, each with where it would have written. */
  refused: string[];
  /** Schemas outside the isolated one that must not exist afterwards. */
  outside: string[];
}

const CASES: EscapeCase[] = [
  {
    name: 'a generate_schema_name override that returns custom schemas bare',
    files: {
      'analytics/macros/generate_schema_name.sql': `{% macro generate_schema_name(custom_schema_name, node) -%}\n${BARE_CUSTOM_SCHEMA}\n{%- endmacro %}\n`,
    },
    refused: ['model.analytics.daily_revenue → warehouse.finance', 'seed.analytics.raw_orders → warehouse.raw'],
    outside: ['finance', 'raw'],
  },
  {
    name: 'a model configured with +database',
    files: {
      'analytics/models/marts/exported_orders.sql':
        "{{ config(materialized='table', database='production') }}\nselect * from {{ ref('orders') }}\n",
    },
    refused: ['model.analytics.exported_orders → production.analytics_'],
    outside: [],
  },
  {
    name: 'a snapshot with target_schema',
    files: {
      'analytics/snapshots/orders_snapshot.sql':
        "{% snapshot orders_snapshot %}\n{{ config(target_schema='snapshots', unique_key='order_id', strategy='check', check_cols='all') }}\nselect * from {{ ref('stg_orders') }}\n{% endsnapshot %}\n",
    },
    refused: ['snapshot.analytics.orders_snapshot → warehouse.snapshots'],
    outside: ['snapshots'],
  },
  {
    name: 'a package whose own generate_schema_name the project dispatches to',
    files: {
      'shared_macros/macros/schema_names.sql': `{% macro default__generate_schema_name(custom_schema_name, node) -%}\n${BARE_CUSTOM_SCHEMA}\n{%- endmacro %}\n`,
    },
    append: {
      'analytics/dbt_project.yml':
        "\ndispatch:\n  - macro_namespace: dbt\n    search_order: ['analytics', 'shared_macros', 'dbt']\n",
    },
    refused: ['model.analytics.daily_revenue → warehouse.finance'],
    outside: ['finance', 'raw'],
  },
];

describe('the isolation guard: no relation escapes the isolated schema', () => {
  let ws: TestWorkspace;
  let warehouse: string;
  const build = (...args: string[]) => ws.nx(['run', 'analytics:isolated-build', ...args]);

  /** Commits the case's changes on a new branch from main and returns the commit. */
  function commitCase(branch: string, { files, append = {} }: Pick<EscapeCase, 'files' | 'append'>): string {
    git(ws.dir, 'checkout', '-q', '-b', branch, 'main');
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(dirname(join(ws.dir, file)), { recursive: true });
      writeFileSync(join(ws.dir, file), text);
    }
    for (const [file, text] of Object.entries(append)) appendFileSync(join(ws.dir, file), text);
    git(ws.dir, 'add', '-A');
    git(ws.dir, 'commit', '-q', '-m', branch);
    const commit = git(ws.dir, 'rev-parse', 'HEAD');
    git(ws.dir, 'checkout', '-q', 'main');
    return commit;
  }

  beforeAll(async () => {
    ws = createTestWorkspace();
    warehouse = join(ws.dir, 'analytics', 'warehouse.duckdb');
    // The fixture itself keeps to its schema: the guard lets it build.
    const main = await build('--ref=main');
    expect(main.output).toContain('Isolated build succeeded');
  });
  afterAll(() => ws.remove());

  it.each(CASES.map((escape, index) => [escape.name, index] as const))(
    'refuses %s before any SQL runs, naming each node and where it would write',
    async (_name, index) => {
      const escape = CASES[index];
      const commit = commitCase(`escape-${index}`, escape);
      const before = ws.gitState();

      const result = await build(`--ref=escape-${index}`);
      expect(result.code).not.toBe(0);
      const refusal = result.output.split('\n').filter((line) => line.includes('refused to build'));
      expect(refusal.length).toBeGreaterThan(0);
      for (const node of escape.refused) expect(refusal[0]).toContain(node);
      expect(refusal[0]).toContain(`outside the isolated schema warehouse.analytics_${short(commit)}`);
      expect(refusal[0]).toContain('isolationExceptions');

      // Nothing was written: not the production schemas, not even the isolated ones.
      for (const schema of escape.outside) expect(schemasIn(warehouse, schema)).toEqual([]);
      expect(schemasIn(warehouse, `analytics_${short(commit)}`)).toEqual([]);
      const record = JSON.parse(
        readFileSync(join(ws.dir, '.dot', short(commit), 'analytics', 'dev', 'build.json'), 'utf8'),
      );
      expect(record).toMatchObject({ status: 'failed', error: expect.stringContaining('refused to build') });
      expect(ws.gitState()).toEqual(before);
    },
  );

  it('lets a node named in isolationExceptions write where it is configured to', async () => {
    const snapshot = CASES.find((escape) => escape.name.includes('snapshot'))!;
    const commit = commitCase('allowed-snapshot', snapshot);
    const result = await build('--ref=allowed-snapshot', '--isolationExceptions=orders_snapshot');
    expect(result.output).toContain('Isolated build succeeded');
    expect(schemasIn(warehouse, 'snapshots')).toEqual(['snapshots']);
    expect(schemasIn(warehouse, `analytics_${short(commit)}`)).toContain(`analytics_${short(commit)}`);
  });
});
