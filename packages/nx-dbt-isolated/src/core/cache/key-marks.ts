import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { readJson, writeJsonAtomically } from '../workspace/files';
import { marksDir, type MarkKind } from '../workspace/dot-layout';

interface Mark {
  token: string;
  /** When: `droppedAt` for a drop, as older versions wrote it; `at` otherwise. */
  droppedAt?: string;
  at?: string;
  /** A rebuild's earlier tokens, newest first: keys a concurrent build was hashed under. */
  earlier?: string[];
}

/** How many earlier rebuild tokens a mark keeps: more than builds of one commit ever overlap. */
const EARLIER_KEPT = 20;

function markFile(workspaceRoot: string, kind: MarkKind, project: string, commit: string): string {
  return join(marksDir(workspaceRoot, kind), encodeURIComponent(project), `${commit}.json`);
}

function readMark(workspaceRoot: string, kind: MarkKind, project: string, commit: string): Mark | undefined {
  return readJson<Mark>(markFile(workspaceRoot, kind, project, commit));
}

/**
 * Notes that a clean dropped the schemas of `project`'s builds at `commit`. The note joins the
 * build key, so Nx's cache entry of the dropped build no longer matches and the next build of
 * that commit runs dbt instead of restoring artifacts of relations that are gone.
 */
export function markSchemasDropped(workspaceRoot: string, project: string, commit: string): void {
  const mark: Mark = { token: randomUUID(), droppedAt: new Date().toISOString() };
  writeJsonAtomically(markFile(workspaceRoot, 'dropped', project, commit), mark);
}

/** The token of the last drop of `project`'s schemas at `commit`, if a clean ever dropped them. */
export function schemasDroppedToken(workspaceRoot: string, project: string, commit: string): string | undefined {
  return readMark(workspaceRoot, 'dropped', project, commit)?.token;
}

/** When a clean last dropped `project`'s schemas at `commit`, if one ever did. */
export function schemasDroppedAt(workspaceRoot: string, project: string, commit: string): Date | undefined {
  const droppedAt = readMark(workspaceRoot, 'dropped', project, commit)?.droppedAt;
  return droppedAt === undefined ? undefined : new Date(droppedAt);
}

/**
 * Notes that a forced rebuild (`--skip-nx-cache`) of `project` at `commit` started. The note
 * joins the build key, so the cache entry of the build it replaces no longer matches whatever
 * becomes of the rebuild: Nx never caches a forced run, yet it writes the run's terminal output
 * where that entry's is kept (ADR 24), and a hit would print a failure and exit 0.
 */
export function markRebuilt(workspaceRoot: string, project: string, commit: string): void {
  const last = readMark(workspaceRoot, 'rebuilt', project, commit);
  const earlier = last ? [last.token, ...(last.earlier ?? [])].slice(0, EARLIER_KEPT) : [];
  const mark: Mark = { token: randomUUID(), at: new Date().toISOString(), earlier };
  writeJsonAtomically(markFile(workspaceRoot, 'rebuilt', project, commit), mark);
}

/** The token of the last forced rebuild of `project` at `commit`, if one ever started. */
export function rebuiltToken(workspaceRoot: string, project: string, commit: string): string | undefined {
  return readMark(workspaceRoot, 'rebuilt', project, commit)?.token;
}

/**
 * The tokens the key of `project` at `commit` held before the last forced rebuilds, newest
 * first, ending with null (none, before the first): what a build hashed before a rebuild that
 * started meanwhile was keyed with.
 */
export function earlierRebuiltTokens(workspaceRoot: string, project: string, commit: string): (string | null)[] {
  const mark = readMark(workspaceRoot, 'rebuilt', project, commit);
  return mark ? [...(mark.earlier ?? []), null] : [];
}
