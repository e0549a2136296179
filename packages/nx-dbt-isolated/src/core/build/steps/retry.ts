import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeJsonAtomically } from '../../workspace/files';
import { UserError } from '../../workspace/errors';
import { contentsOf } from '../contents';
import { readBuildRecord, type BuildRecord } from '../records';
import { fullBuildCommand, type BuildContext } from './context';
import { failedOnNodes } from './record';

/**
 * What `--command=retry` retries: this workspace's build of the commit, project and dbt target
 * whose dbt ran to its end with failed nodes, and left its run_results.json, which `dbt retry`
 * reads to run the nodes that failed or were skipped, with that build's own arguments. Anything
 * else is refused in one line: a build stopped part way names only the nodes that finished, so a
 * retry of it would leave the rest unbuilt and call the build complete.
 */
export function buildToRetry({ request, paths }: BuildContext): BuildRecord {
  refuseRetryOptions(request);
  const record = readBuildRecord(paths.buildRecord);
  const at = `${request.project} at ${request.ref}`;
  const buildIt = fullBuildCommand(request);
  if (!record) throw new UserError(`nothing to retry: this workspace has no build of ${at}; build it (${buildIt}).`);
  if (record.status === 'succeeded') {
    throw new UserError(
      `nothing to retry: the build of ${at} made at ${record.startedAt} succeeded; build it again with --skip-nx-cache to run dbt anyway.`,
    );
  }
  if (record.deferredTo) {
    throw new UserError(
      `the build of ${at} that ${record.status} was a slim build, which retry does not take up (its record would lose its base): run the slim build again, with --deferTo=${record.deferredTo.ref}.`,
    );
  }
  if (!failedOnNodes(record) || !existsSync(join(paths.targetPath, RUN_RESULTS))) {
    throw new UserError(
      `the build of ${at} ${record.status === 'failed' ? `failed (${record.error})` : `was ${record.status}`} before dbt had run every node, so dbt retry would leave nodes unbuilt: build it again (${buildIt}).`,
    );
  }
  return record;
}

/** dbt retry runs the failed build's own selection, vars and flags: the options of this run would not be the ones recorded. */
function refuseRetryOptions({ selection }: BuildContext['request']): void {
  const given = [
    ...(selection.select?.length ? ['--select'] : []),
    ...(selection.exclude?.length ? ['--exclude'] : []),
    ...(selection.selector ? ['--selector'] : []),
    ...(selection.vars ? ['--vars'] : []),
    ...(selection.fullRefresh ? ['--fullRefresh'] : []),
    ...(selection.extraArgs?.length ? ['--args'] : []),
  ];
  if (given.length === 0) return;
  throw new UserError(
    `--command=retry reruns the failed build with that build's own selection and arguments: leave out ${given.join(', ')}.`,
  );
}

/** The retry's record says what the retried build was asked for: retrying completes it. */
export function retryingRecord(record: BuildRecord, retried: BuildRecord): void {
  record.command = retried.command;
  record.selection = retried.selection;
  record.contents = contentsOf(retried);
  record.retried = { startedAt: retried.startedAt, status: retried.status };
}

const RUN_RESULTS = 'run_results.json';

interface RunResults {
  metadata?: { invocation_id?: string };
  results: { unique_id: string }[];
  elapsed_time?: number;
}

export function readRunResults(targetPath: string): RunResults | undefined {
  return readJson<RunResults>(join(targetPath, RUN_RESULTS));
}

/**
 * dbt retry writes the results of the nodes it ran only; the build's run_results.json then
 * holds every node's last result, as one build that succeeded would.
 */
export function mergeRetriedResults(targetPath: string, before: RunResults): void {
  const file = join(targetPath, RUN_RESULTS);
  if (!existsSync(file)) return;
  const retried = JSON.parse(readFileSync(file, 'utf8')) as RunResults;
  // dbt stopped before it wrote results of its own: the file is still the retried build's.
  if (retried.metadata?.invocation_id === before.metadata?.invocation_id) return;
  const rerun = new Set(retried.results.map((result) => result.unique_id));
  writeJsonAtomically(file, {
    ...retried,
    results: [...before.results.filter((result) => !rerun.has(result.unique_id)), ...retried.results],
    elapsed_time: (before.elapsed_time ?? 0) + (retried.elapsed_time ?? 0),
  });
}
