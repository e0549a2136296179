import { existsSync, realpathSync } from 'node:fs';
import { join, relative } from 'node:path';
import { removeUnrecordedCheckouts } from '../../clean/leftovers';
import { DBT_PROJECT_FILE } from '../../dbt/project';
import { ensureCheckout, type LeasedCheckout } from '../../git/checkout';
import { repositoryRoot, resolveCommit, submoduleHolding } from '../../git/refs';
import { checkoutScope, type CheckoutFolders, type CheckoutScope } from '../../git/sparse';
import { ensureDotFolder } from '../../workspace/dot-layout';
import { UserError } from '../../workspace/errors';
import { ifStopped } from '../../workspace/lock';
import type { IsolatedBuildRequest } from './context';
import type { Reporter } from '../../workspace/reporter';
import { timed } from './timing';

/** What a checkout of the project at a ref needs to know. */
export type CheckoutRequest = Pick<
  IsolatedBuildRequest,
  'workspaceRoot' | 'projectRoot' | 'project' | 'ref' | 'sparseCheckout' | 'checkoutFolders'
>;

export interface ProjectCheckout {
  repoRoot: string;
  commit: string;
  checkout: LeasedCheckout;
  /** The project's folder in the checkout. */
  projectDir: string;
  workingProjectDir: string;
}

/**
 * Where dbt runs: relative paths in the profile (a templated DuckDB path, dbt-duckdb's
 * external_root) resolve against the working directory, so where the user's own dbt would run,
 * the project's folder in the working tree, while it exists.
 */
export function dbtWorkingDir({ workingProjectDir, projectDir }: ProjectCheckout): string {
  return existsSync(workingProjectDir) ? workingProjectDir : projectDir;
}

/**
 * Resolves the ref and returns the project's folder in a valid checkout of that commit;
 * `resolved` is told the commit before anything else can fail.
 */
export async function checkoutProject(
  request: CheckoutRequest,
  reporter: Reporter,
  resolved?: (commit: string) => void,
): Promise<ProjectCheckout> {
  const { workspaceRoot } = request;
  const repoRoot = await repositoryRoot(workspaceRoot);
  const commit = await timed(reporter, `resolve ref ${request.ref}`, () => resolveCommit(repoRoot, request.ref));
  resolved?.(commit);
  ensureDotFolder(workspaceRoot);
  // git names the repository by its real path; the workspace root may be reached through a link.
  const inRepository = (path: string) => relative(repoRoot, join(realpathSync(workspaceRoot), path));
  const projectPath = inRepository(request.projectRoot);
  const scope = await folderScope(request, repoRoot, commit, projectPath, inRepository);
  for (const line of await removeUnrecordedCheckouts(repoRoot, workspaceRoot, commit)) reporter.info(`• ${line}`);
  if (scope.fullBecause) reporter.info(`• checking out every file: ${scope.fullBecause}`);
  const checkout = await timed(
    reporter,
    `checkout ${commit.slice(0, 12)} (${describeFolders(scope.folders)})`,
    () =>
      ensureCheckout(repoRoot, workspaceRoot, commit, {
        holder: request.project,
        folders: scope.folders,
        onWait: (holder) =>
          reporter.info(
            `waiting for another build or clean of this commit to finish with its checkout${ifStopped(holder)}`,
          ),
      }),
    { announce: true },
  );
  const workingProjectDir = join(workspaceRoot, request.projectRoot);
  const projectDir = join(checkout.worktree, projectPath);
  if (!existsSync(join(projectDir, DBT_PROJECT_FILE))) {
    await checkout.release();
    await refuseSubmodule(request, repoRoot, commit, projectPath);
    throw new UserError(
      `${request.projectRoot}/${DBT_PROJECT_FILE} does not exist at ${request.ref} (${commit.slice(0, 12)}): the project was added later or moved; pick a ref that has it.`,
    );
  }
  return { repoRoot, commit, checkout, projectDir, workingProjectDir };
}

async function refuseSubmodule(request: CheckoutRequest, repoRoot: string, commit: string, projectPath: string) {
  const submodule = await submoduleHolding(repoRoot, commit, projectPath);
  if (submodule === undefined) return;
  throw new UserError(
    `${request.projectRoot} is inside git submodule ${submodule} at ${request.ref} (${commit.slice(0, 12)}), and isolated builds check out only the repository's own files, not submodules: build it from the submodule's own repository (an Nx workspace there), or make the project part of this repository.`,
  );
}

function folderScope(
  request: CheckoutRequest,
  repoRoot: string,
  commit: string,
  projectPath: string,
  inRepository: (path: string) => string,
): Promise<CheckoutScope> {
  if (request.sparseCheckout === false) return Promise.resolve({ folders: 'all' });
  return checkoutScope(repoRoot, commit, projectPath, (request.checkoutFolders ?? []).map(inRepository));
}

function describeFolders(folders: CheckoutFolders): string {
  return folders === 'all' ? 'every file' : `sparse: ${folders.join(', ')}`;
}
