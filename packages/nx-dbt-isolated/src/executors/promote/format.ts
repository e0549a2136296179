import type { PromoteResult } from '../../core/promote/promote-commit';

export function planLines({ build, promotedAs, plan, skipped }: PromoteResult, ref: string, dryRun: boolean): string[] {
  const { record } = build;
  const heading = `${dryRun ? 'Plan to promote' : 'Promoted'} ${record.project} at ${ref} (${record.commit.slice(0, 12)}, dbt target ${record.target}) to ${promotedAs}:`;
  const rows = plan.actions.map((action) => {
    const view = `${action.view.schema}.${action.view.name}`;
    const source = 'sourceSchema' in action.view ? `  <- ${action.view.sourceSchema}.${action.view.name}` : '';
    return `  ${action.kind.padEnd(8)}${view}${source}`;
  });
  const skippedRows = skipped.map((node) => `  skipped ${node}`);
  const footer = dryRun
    ? 'Dry run: nothing changed. Run again without --dryRun to switch every view in one transaction.'
    : `${switched(plan)} in one transaction; the build is marked promoted, so clean keeps it.`;
  return [heading, ...rows, ...skippedRows, footer];
}

function switched({ actions }: PromoteResult['plan']): string {
  const dropped = actions.filter((action) => action.kind === 'drop').length;
  const made = `${actions.length - dropped} views made`;
  return dropped > 0 ? `${made}, ${dropped} dropped` : made;
}
