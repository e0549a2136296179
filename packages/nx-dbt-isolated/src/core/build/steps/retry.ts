import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeJsonAtomically } from '../../workspace/files';
import { UserError } from '../../workspace/errors';
import { contentsOf } from '../contents';
import { readBuildRecord, type BuildRecord } from '../records';
import { fullBuildCommand, type BuildContext } from './context';

/**
 * What `--command=retry` retries: this workspace's build of the commit, project and dbt target
 * that did not succeed and whose dbt left its run_results.json, which `dbt retry` reads to run
 * the nodes that failed or were skipped. Anything else is refused in one line.
 */
export function buildToRetry({ request, paths }: BuildContext): BuildRecord {
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
      `the build of ${at} that ${record.status} was a slim build, which dbt retry would run without its deferral: build it again with --deferTo=${record.deferredTo.ref}.`,
    );
  }
  if (!existsSync(join(paths.targetPath, RUN_RESULTS))) {
    throw new UserError(
      `the build of ${at} that ${record.status} stopped before dbt ran its command, so dbt retry has nothing to go on: build it again (${buildIt}).`,
    );
  }
  return record;
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
  const rerun = new Set(retried.results.map((result) => result.unique_id));
  writeJsonAtomically(file, {
    ...retried,
    results: [...before.results.filter((result) => !rerun.has(result.unique_id)), ...retried.results],
    elapsed_time: (before.elapsed_time ?? 0) + (retried.elapsed_time ?? 0),
  });
}
