import { relative } from 'node:path';
import type { CommandAtCommit, CommitCommandRequest } from '../../core/command/run-at-commit';

/** The last line of a command at a commit: what ran where, and where its artifacts are. */
export function ranLine(request: CommitCommandRequest, ran: CommandAtCommit, workspaceRoot: string): string {
  return `dbt ${request.command} ran on ${request.project} at ${request.ref} (${ran.commit.slice(0, 12)}), schema ${ran.schema}; artifacts in ${relative(workspaceRoot, ran.targetPath)}`;
}
