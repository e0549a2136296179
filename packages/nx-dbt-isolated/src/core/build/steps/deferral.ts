import { resolveCommit } from '../../git/refs';
import { UserError } from '../../workspace/errors';
import { findDeferralBase, type DeferralBase } from '../slim';
import type { IsolatedBuildRequest } from './context';
import type { ProjectCheckout } from './checkout';

/** The commit `deferTo` names, which must differ from the one being built. */
export async function deferralCommit(
  request: IsolatedBuildRequest,
  checkedOut: ProjectCheckout,
): Promise<string | undefined> {
  if (request.deferTo === undefined) return undefined;
  const commit = await resolveCommit(checkedOut.repoRoot, request.deferTo);
  if (commit === checkedOut.commit) {
    throw new UserError(
      `--deferTo=${request.deferTo} names the commit being built (${commit.slice(0, 12)}), so a slim build would build nothing: defer to an older commit, such as your base branch.`,
    );
  }
  return commit;
}

export function deferralBase(request: IsolatedBuildRequest, commit: string, dbtTarget: string): Promise<DeferralBase> {
  return findDeferralBase({
    workspaceRoot: request.workspaceRoot,
    project: request.project,
    targetName: request.targetName,
    dbtTarget,
    ref: request.deferTo!,
    commit,
    build: request.buildBase,
  });
}
