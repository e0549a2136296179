import type { BuildSide, ColumnType, DataDiff, DiffReport, NodeChanges } from './types';

const NONE = '–';
const CHANGE_KINDS: (keyof NodeChanges)[] = ['added', 'removed', 'modified'];

/** The report as Markdown for a pull-request comment. */
export function renderMarkdown(report: DiffReport): string {
  const lines = [
    `## dbt diff of ${report.project} (${report.target})`,
    '',
    `Base ${markdownSide(report.base)} → head ${markdownSide(report.head)}`,
    '',
    '### Changed nodes',
    '',
    ...markdownNodes(report),
    '### Data',
    '',
    ...(report.data.length > 0 ? report.data.flatMap(markdownData) : ['Nothing compared.', '']),
  ];
  return lines.join('\n');
}

/** The report as plain text for a terminal: aligned columns, no colours. */
export function renderTable(report: DiffReport): string {
  const lines = [
    `${report.project} (${report.target}): base ${plainSide(report.base)} → head ${plainSide(report.head)}`,
    '',
    ...plainNodes(report),
    '',
    ...(report.data.length > 0 ? plainData(report.data) : ['nothing compared']),
  ];
  return lines.join('\n') + '\n';
}

function markdownSide(side: BuildSide): string {
  return `\`${shortSha(side.commit)}\` (${side.ref})`;
}

function plainSide(side: BuildSide): string {
  return `${shortSha(side.commit)} (${side.ref})`;
}

function shortSha(commit: string): string {
  return commit.slice(0, 8);
}

function markdownNodes(report: DiffReport): string[] {
  const kinds = CHANGE_KINDS.filter((kind) => report.nodes[kind].length > 0);
  if (kinds.length === 0) return ['No model, seed or snapshot changed.', ''];
  return kinds.flatMap((kind) => [
    `**${capitalized(kind)}** (${report.nodes[kind].length})`,
    ...report.nodes[kind].map((id) => {
      const downstream = report.downstream[id] ?? [];
      const suffix = downstream.length > 0 ? ` — downstream: ${downstream.map(code).join(', ')}` : '';
      return `- ${code(id)}${suffix}`;
    }),
    '',
  ]);
}

function markdownData(entry: DataDiff): string[] {
  const note = entry.comparison?.mode === 'multiset' ? entry.comparison.note : undefined;
  const noted = note !== undefined ? [`> ${note}`, ''] : [];
  const heading = `#### ${code(entry.name)} (${entry.change})`;
  if (hasNoDifferences(entry)) {
    return [
      heading,
      '',
      `No differences: ${rowsText(entry)} rows, compared ${comparedText(entry, code)}.`,
      '',
      ...noted,
    ];
  }
  const rows = [['rows', rowsText(entry)], ...columnRows(entry), ...comparisonRows(entry)];
  return [
    heading,
    '',
    '| | base → head |',
    '| --- | --- |',
    ...rows.map(([label, value]) => `| ${label} | ${escapeCell(value)} |`),
    '',
    ...noted,
  ];
}

function columnRows(entry: DataDiff): string[][] {
  const typed = (columns: ColumnType[]) => columns.map((column) => `${code(column.name)} ${column.type}`).join(', ');
  const { added, removed, typeChanged } = entry.columns;
  if (!entry.base) return [['columns', typed(added)]];
  if (!entry.head) return [['columns', typed(removed)]];
  const rows = [
    ['columns added', typed(added)],
    ['columns removed', typed(removed)],
    ['type changed', typeChanged.map((change) => `${code(change.name)} ${change.base} → ${change.head}`).join(', ')],
  ];
  return rows.filter(([, value]) => value !== '');
}

function comparisonRows(entry: DataDiff): string[][] {
  const comparison = entry.comparison;
  if (!comparison) return [];
  return [
    ['compared', comparedText(entry, code)],
    ['matched rows', String(comparison.matched)],
    ['only in base', String(comparison.onlyInBase)],
    ['only in head', String(comparison.onlyInHead)],
    ['value differences', valueDifferencesText(entry, code) || 'none'],
  ];
}

function plainNodes(report: DiffReport): string[] {
  const rows = CHANGE_KINDS.flatMap((kind) =>
    report.nodes[kind].flatMap((id) => {
      const downstream = report.downstream[id] ?? [];
      return [[kind, id], ...(downstream.length > 0 ? [['', `downstream: ${downstream.join(', ')}`]] : [])];
    }),
  );
  return rows.length > 0 ? aligned(rows) : ['no model, seed or snapshot changed'];
}

function plainData(data: DataDiff[]): string[] {
  const header = ['model', 'change', 'rows', 'columns', 'compared', 'matched', 'only base', 'only head', 'differences'];
  const rows = data.map((entry) => {
    const comparison = entry.comparison;
    const counts = comparison
      ? [comparison.matched, comparison.onlyInBase, comparison.onlyInHead].map(String)
      : [NONE, NONE, NONE];
    return [
      entry.name,
      entry.change,
      rowsText(entry),
      plainColumns(entry),
      comparison ? comparedText(entry, (name) => name) : NONE,
      ...counts,
      comparison ? valueDifferencesText(entry, (name) => name) || 'none' : NONE,
    ];
  });
  const notes = data.flatMap((entry) =>
    entry.comparison?.mode === 'multiset' && entry.comparison.note !== undefined
      ? [`${entry.name}: ${entry.comparison.note}`]
      : [],
  );
  const legend = 'columns: +added -removed ~type changed';
  return [...aligned([header, ...rows], new Set([5, 6, 7])), '', legend, ...notes];
}

/** `+added -removed ~typeChanged`, or `same`. */
function plainColumns(entry: DataDiff): string {
  const { added, removed, typeChanged } = entry.columns;
  const changes = [
    ...added.map((column) => `+${column.name}`),
    ...removed.map((column) => `-${column.name}`),
    ...typeChanged.map((column) => `~${column.name}`),
  ];
  return changes.length > 0 ? changes.join(' ') : 'same';
}

function rowsText(entry: DataDiff): string {
  const base = entry.base?.rows;
  const head = entry.head?.rows;
  if (base !== undefined && base === head) return String(base);
  return `${base ?? NONE} → ${head ?? NONE}`;
}

function comparedText(entry: DataDiff, name: (text: string) => string): string {
  if (entry.comparison?.mode === 'key') return `by key ${name(entry.comparison.key)}`;
  return 'as multisets';
}

/** The columns with any difference, `name count` separated by commas; empty when there are none. */
function valueDifferencesText(entry: DataDiff, name: (text: string) => string): string {
  return Object.entries(entry.valueDifferences)
    .filter(([, count]) => count > 0)
    .map(([column, count]) => `${name(column)} ${count}`)
    .join(', ');
}

function hasNoDifferences(entry: DataDiff): boolean {
  const { base, head, columns, comparison } = entry;
  return (
    base !== null &&
    head !== null &&
    comparison !== null &&
    base.rows === head.rows &&
    columns.added.length + columns.removed.length + columns.typeChanged.length === 0 &&
    comparison.onlyInBase + comparison.onlyInHead === 0 &&
    Object.values(entry.valueDifferences).every((count) => count === 0)
  );
}

/** Pads every cell to its column's width; the columns in `right` are aligned right. */
function aligned(rows: string[][], right = new Set<number>()): string[] {
  const widths = rows[0].map((_, index) => Math.max(...rows.map((row) => (row[index] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, index) => (right.has(index) ? cell.padStart(widths[index]) : cell.padEnd(widths[index])))
      .join('  ')
      .trimEnd(),
  );
}

function code(text: string): string {
  return `\`${text}\``;
}

/** A pipe would end a table cell, even inside a code span. */
function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
