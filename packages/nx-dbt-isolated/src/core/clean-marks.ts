import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { readJson, writeJsonAtomically } from './files';
import { droppedMarksDir } from './dot-layout';

interface DroppedMark {
  token: string;
  droppedAt: string;
}

function markFile(workspaceRoot: string, project: string, commit: string): string {
  return join(droppedMarksDir(workspaceRoot), encodeURIComponent(project), `${commit}.json`);
}

/**
 * Notes that a clean dropped the schemas of `project`'s builds at `commit`. The note joins the
 * build key, so Nx's cache entry of the dropped build no longer matches and the next build of
 * that commit runs dbt instead of restoring artifacts of relations that are gone.
 */
export function markSchemasDropped(workspaceRoot: string, project: string, commit: string): void {
  const mark: DroppedMark = { token: randomUUID(), droppedAt: new Date().toISOString() };
  writeJsonAtomically(markFile(workspaceRoot, project, commit), mark);
}

/** The token of the last drop of `project`'s schemas at `commit`, if a clean ever dropped them. */
export function schemasDroppedToken(workspaceRoot: string, project: string, commit: string): string | undefined {
  return readJson<DroppedMark>(markFile(workspaceRoot, project, commit))?.token;
}

/** When a clean last dropped `project`'s schemas at `commit`, if one ever did. */
export function schemasDroppedAt(workspaceRoot: string, project: string, commit: string): Date | undefined {
  const droppedAt = readJson<DroppedMark>(markFile(workspaceRoot, project, commit))?.droppedAt;
  return droppedAt === undefined ? undefined : new Date(droppedAt);
}
