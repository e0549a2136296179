import { lastUsed } from '../../core/clean/policy';
import type { CleanOutcome, CleanPlan, PlannedBuild } from '../../core/clean/clean';

export interface PlanView {
  project: string;
  dryRun: boolean;
  /** The schemas of each build that exist, when a dry run looked. */
  existing?: Map<PlannedBuild, string[]>;
}

const HEADINGS = ['commit', 'ref', 'target', 'status', 'last used', 'action', 'why'];

/** The plan as a table: one row per recorded build, its schemas under each build to clean. */
export function planTable(plan: CleanPlan, view: PlanView): string {
  const title = `Clean plan for ${view.project}${view.dryRun ? ' (dry run: nothing changed)' : ''}`;
  if (plan.builds.length === 0) return `${title}\n  no recorded builds`;
  const rows = plan.builds.map(({ record, decision }) => [
    record.buildId,
    record.ref,
    record.target,
    record.status,
    lastUsed(record).slice(0, 16).replace('T', ' '),
    decision.clean ? 'clean' : 'keep',
    decision.reason,
  ]);
  const widths = HEADINGS.map((heading, column) => Math.max(heading.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    `  ${cells.map((cell, column) => cell.padEnd(widths[column])).join('  ')}`.trimEnd();
  const lines = [title, line(HEADINGS)];
  plan.builds.forEach((build, index) => {
    lines.push(line(rows[index]));
    if (build.decision.clean) lines.push(...schemaLines(build, view));
  });
  return lines.join('\n');
}

function schemaLines(build: PlannedBuild, view: PlanView): string[] {
  const existing = view.existing?.get(build);
  const state = (schema: string) =>
    existing === undefined ? '' : existing.includes(schema) ? ' (exists)' : ' (absent)';
  const lines: string[] = [];
  if (build.schemas.length > 0)
    lines.push(`      drops ${build.schemas.map((schema) => schema + state(schema)).join(', ')}`);
  for (const { schema, reason } of build.keptSchemas) lines.push(`      leaves ${schema}: ${reason}`);
  return lines;
}

/** One line per build the clean acted on, then the totals. */
export function outcomeLines(outcomes: CleanOutcome[], kept: number, workspaceRoot: string): string[] {
  const count = (status: CleanOutcome['status']) => outcomes.filter((outcome) => outcome.status === status).length;
  const lines = outcomes.map(
    ({ build, status, detail }) =>
      `  ${status} ${build.record.buildId} (${build.record.target}): ${detail.replaceAll(`${workspaceRoot}/`, '')}`,
  );
  const totals = [`Cleaned ${count('cleaned')} build(s)`, `kept ${kept}`];
  if (count('skipped') > 0) totals.push(`skipped ${count('skipped')}`);
  if (count('failed') > 0) totals.push(`failed ${count('failed')}`);
  lines.push(totals.join(', '));
  return lines;
}
