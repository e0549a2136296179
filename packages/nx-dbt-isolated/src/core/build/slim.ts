import type { DbtSelection } from '../dbt/args';
import { findFullBuild, type FullBuildLookup } from './full-build';

/** The full isolated build a slim build compares against and reads unchanged relations from. */
export interface DeferralBase {
  commit: string;
  ref: string;
  /** The base build's own schema, where the relations the slim build leaves out live. */
  schema: string;
  /** The base build's target folder: its manifest.json is dbt's --state. */
  statePath: string;
}

export type DeferralRequest = Omit<FullBuildLookup, 'purpose' | 'buildOption'>;

/** The commit's isolated build to defer to: a full, succeeded build of the same project and dbt target. */
export async function findDeferralBase(request: DeferralRequest): Promise<DeferralBase> {
  const { record, paths } = await findFullBuild({ ...request, purpose: 'to defer to', buildOption: '--buildBase' });
  return { commit: record.commit, ref: request.ref, schema: record.schema, statePath: paths.targetPath };
}

/**
 * dbt's slim CI: what changed since the base and everything downstream of it, unless the user
 * selected nodes themselves; every other reference reads the base's relations, even where the
 * head's schema holds a relation of that name from an earlier build (--favor-state).
 */
export function slimSelection(selection: DbtSelection, base: DeferralBase): DbtSelection {
  return {
    ...selection,
    select: selection.select?.length ? selection.select : ['state:modified+'],
    extraArgs: ['--defer', '--state', base.statePath, '--favor-state', ...(selection.extraArgs ?? [])],
  };
}
