import type { BuildSummary, NodeCounts } from '../../core/build/summary';

/** The summary as the executor prints it: a heading and aligned rows. */
export function summaryLines(summary: BuildSummary, targetName = 'isolated-build'): string[] {
  const rows: [string, string][] = [
    ['commit', `${summary.commit} (ref ${summary.ref})`],
    ['schemas', summary.schemas.join(', ')],
    ...(summary.deferredTo
      ? [
          [
            'deferred',
            `to ${summary.deferredTo.schema} (${summary.deferredTo.ref}, ${summary.deferredTo.commit.slice(0, 12)})`,
          ] as [string, string],
        ]
      : []),
    ['target', `${summary.dbtTarget} (${summary.warehouse.type} ${summary.warehouse.location})`],
    ['contents', summary.contents],
    ['results', summary.compiled ? compiledText(summary.compiled) : resultsText(summary.nodes)],
    ...(summary.seconds !== undefined ? [['duration', `${summary.seconds.toFixed(1)}s`] as [string, string]] : []),
    ['artifacts', summary.artifacts],
    ...summary.failures.map(({ node, message }): [string, string] => ['failed', `${node}: ${message.split('\n')[0]}`]),
    ...retryRow(summary, targetName),
  ];
  const heading =
    summary.status === 'succeeded' ? 'Isolated build succeeded' : `Isolated build ${summary.status}: ${summary.error}`;
  return [heading, ...rows.map(([label, value]) => `  ${label.padEnd(10)}${value}`)];
}

/** A build whose nodes failed can run just those again, and what they held up (dbt retry). */
function retryRow(summary: BuildSummary, targetName: string): [string, string][] {
  if (summary.status !== 'failed' || summary.failures.length === 0 || summary.deferredTo) return [];
  return [
    [
      'retry',
      `nx run ${summary.project}:${targetName} --ref=${summary.ref} --target=${summary.dbtTarget} --command=retry (the failed and skipped nodes only)`,
    ],
  ];
}

/** `models 7 passed; tests 8 passed, 1 failed; seeds 3 passed`, leaving out zero counts. */
function resultsText(nodes: Record<string, NodeCounts>): string {
  const parts = Object.entries(nodes).map(([type, counts]) => {
    const said = (Object.entries(counts) as [keyof NodeCounts, number][])
      .filter(([, count]) => count > 0)
      .map(([outcome, count]) => `${count} ${outcome}`);
    return `${type}s ${said.join(', ')}`;
  });
  return parts.join('; ') || 'none';
}

/** `7 models, 24 tests compiled, none run`. */
function compiledText(compiled: Record<string, number>): string {
  const parts = Object.entries(compiled).map(([type, count]) => `${count} ${type}s`);
  return parts.length > 0 ? `${parts.join(', ')} compiled, none run` : 'none';
}
