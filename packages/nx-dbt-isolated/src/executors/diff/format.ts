import { relative } from 'node:path';
import { renderMarkdown, renderTable } from '../../core/diff/report';
import type { DiffReport } from '../../core/diff/types';
import type { DiffExecutorOptions } from './schema';

export type DiffFormat = NonNullable<DiffExecutorOptions['format']>;

const render = { table: renderTable, markdown: renderMarkdown };

/** The report as the task prints it, and as `outputFile` keeps it. */
export function renderedReport(report: DiffReport, format: DiffFormat): string {
  return format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : render[format](report);
}

/** Where the diff kept its reports, relative to the workspace root. */
export function reportsLine(files: { markdown: string; json: string }, workspaceRoot: string): string {
  return `Reports: ${relative(workspaceRoot, files.markdown)} and ${relative(workspaceRoot, files.json)}`;
}
