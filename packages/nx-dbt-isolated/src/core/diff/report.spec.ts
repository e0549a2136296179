import { renderMarkdown, renderTable } from './report';
import type { DataDiff, DiffReport } from './types';

const BASE = '1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d';
const HEAD = '5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d1a2b3c4d';

const STG_ORDERS: DataDiff = {
  node: 'model.analytics.stg_orders',
  name: 'stg_orders',
  change: 'modified',
  base: { relation: '"analytics_1a2b3c4d"."stg_orders"', rows: 10 },
  head: { relation: '"analytics_5e6f7a8b"."stg_orders"', rows: 8 },
  columns: {
    added: [{ name: 'x', type: 'INTEGER' }],
    removed: [{ name: 'y', type: 'VARCHAR' }],
    typeChanged: [{ name: 'amount', base: 'INTEGER', head: 'DOUBLE' }],
  },
  comparison: { mode: 'key', key: 'order_id', matched: 8, onlyInBase: 2, onlyInHead: 0 },
  valueDifferences: { amount: 3, status: 0 },
};

const CUSTOMERS: DataDiff = {
  node: 'model.analytics.customers',
  name: 'customers',
  change: 'selected',
  base: { relation: '"analytics_1a2b3c4d"."customers"', rows: 5 },
  head: { relation: '"analytics_5e6f7a8b"."customers"', rows: 5 },
  columns: { added: [], removed: [], typeChanged: [] },
  comparison: {
    mode: 'multiset',
    matched: 5,
    onlyInBase: 0,
    onlyInHead: 0,
    note: 'customer_id is not unique in head (1 duplicated value): compared as multisets',
  },
  valueDifferences: { customer_id: 0, 'first|name': 0 },
};

const VIP: DataDiff = {
  node: 'model.analytics.vip_customers',
  name: 'vip_customers',
  change: 'added',
  base: null,
  head: { relation: '"analytics_5e6f7a8b"."vip_customers"', rows: 2 },
  columns: {
    added: [
      { name: 'customer_id', type: 'INTEGER' },
      { name: 'tier', type: 'VARCHAR' },
    ],
    removed: [],
    typeChanged: [],
  },
  comparison: null,
  valueDifferences: {},
};

const PAYMENTS: DataDiff = {
  node: 'model.analytics.payments',
  name: 'payments',
  change: 'modified',
  base: { relation: '"analytics_1a2b3c4d"."payments"', rows: 4 },
  head: { relation: '"analytics_5e6f7a8b"."payments"', rows: 4 },
  columns: { added: [], removed: [], typeChanged: [] },
  comparison: { mode: 'multiset', matched: 3, onlyInBase: 1, onlyInHead: 1 },
  valueDifferences: { 'pay|method': 2, amount: 0 },
};

function report(overrides: Partial<DiffReport> = {}): DiffReport {
  return {
    project: 'analytics',
    target: 'dev',
    base: { ref: 'main', commit: BASE, schema: 'analytics_1a2b3c4d' },
    head: { ref: 'HEAD', commit: HEAD, schema: 'analytics_5e6f7a8b' },
    nodes: {
      added: ['model.analytics.vip_customers'],
      removed: [],
      modified: ['model.analytics.payments', 'model.analytics.stg_orders'],
    },
    downstream: { 'model.analytics.stg_orders': ['model.analytics.customers', 'model.analytics.orders'] },
    data: [CUSTOMERS, PAYMENTS, STG_ORDERS, VIP],
    ...overrides,
  };
}

describe('renderMarkdown', () => {
  it('heads the comment with the project, target and both commits', () => {
    expect(renderMarkdown(report()).split('\n').slice(0, 3)).toEqual([
      '## dbt diff of analytics (dev)',
      '',
      'Base `1a2b3c4d` (main) → head `5e6f7a8b` (HEAD)',
    ]);
  });

  it('lists the changed nodes by kind with their downstream nodes', () => {
    expect(renderMarkdown(report())).toContain(
      [
        '### Changed nodes',
        '',
        '**Added** (1)',
        '- `model.analytics.vip_customers`',
        '',
        '**Modified** (2)',
        '- `model.analytics.payments`',
        '- `model.analytics.stg_orders` — downstream: `model.analytics.customers`, `model.analytics.orders`',
        '',
      ].join('\n'),
    );
  });

  it('tables the differences of a keyed model, value differences only for columns with any', () => {
    expect(renderMarkdown(report())).toContain(
      [
        '#### `stg_orders` (modified)',
        '',
        '| | base → head |',
        '| --- | --- |',
        '| rows | 10 → 8 |',
        '| columns added | `x` INTEGER |',
        '| columns removed | `y` VARCHAR |',
        '| type changed | `amount` INTEGER → DOUBLE |',
        '| compared | by key `order_id` |',
        '| matched rows | 8 |',
        '| only in base | 2 |',
        '| only in head | 0 |',
        '| value differences | `amount` 3 |',
        '',
      ].join('\n'),
    );
  });

  it('escapes pipes in table cells', () => {
    expect(renderMarkdown(report())).toContain('| value differences | `pay\\|method` 2 |');
  });

  it('says "no differences" for an equal model, with the note on how it was compared', () => {
    expect(renderMarkdown(report())).toContain(
      [
        '#### `customers` (selected)',
        '',
        'No differences: 5 rows, compared as multisets.',
        '',
        '> customer_id is not unique in head (1 duplicated value): compared as multisets',
        '',
      ].join('\n'),
    );
  });

  it('shows only the existing side of an added model', () => {
    expect(renderMarkdown(report())).toContain(
      [
        '#### `vip_customers` (added)',
        '',
        '| | base → head |',
        '| --- | --- |',
        '| rows | – → 2 |',
        '| columns | `customer_id` INTEGER, `tier` VARCHAR |',
        '',
      ].join('\n'),
    );
  });

  it('says so when nothing changed and nothing was compared', () => {
    const markdown = renderMarkdown(
      report({ nodes: { added: [], removed: [], modified: [] }, downstream: {}, data: [] }),
    );
    expect(markdown).toContain('### Changed nodes\n\nNo model, seed or snapshot changed.\n');
    expect(markdown).toContain('### Data\n\nNothing compared.\n');
  });
});

describe('renderTable', () => {
  it('prints the nodes and one aligned line per compared model, then the notes', () => {
    expect(renderTable(report())).toBe(
      [
        'analytics (dev): base 1a2b3c4d (main) → head 5e6f7a8b (HEAD)',
        '',
        'added     model.analytics.vip_customers',
        'modified  model.analytics.payments',
        'modified  model.analytics.stg_orders',
        '          downstream: model.analytics.customers, model.analytics.orders',
        '',
        'model          change    rows    columns             compared         matched  only base  only head  differences',
        'customers      selected  5       same                as multisets           5          0          0  none',
        'payments       modified  4       same                as multisets           3          1          1  pay|method 2',
        'stg_orders     modified  10 → 8  +x -y ~amount       by key order_id        8          2          0  amount 3',
        'vip_customers  added     – → 2   +customer_id +tier  –                      –          –          –  –',
        '',
        'columns: +added -removed ~type changed',
        'customers: customer_id is not unique in head (1 duplicated value): compared as multisets',
        '',
      ].join('\n'),
    );
  });

  it('says so when nothing changed and nothing was compared', () => {
    expect(renderTable(report({ nodes: { added: [], removed: [], modified: [] }, downstream: {}, data: [] }))).toBe(
      'analytics (dev): base 1a2b3c4d (main) → head 5e6f7a8b (HEAD)\n\nno model, seed or snapshot changed\n\nnothing compared\n',
    );
  });
});
