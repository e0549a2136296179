import type { ExecutorContext } from '@nx/devkit';
import { DEFAULT_TARGET_NAMES, PROMOTE_EXECUTOR } from '../../contract';

/** The project's target that promotes, under whatever name the plugin's options gave it, for the commands messages suggest. */
export function promoteTargetOf(context: ExecutorContext, project: string): string {
  const targets = context.projectsConfigurations?.projects[project]?.targets ?? {};
  const promote = Object.keys(targets).find((name) => targets[name].executor === PROMOTE_EXECUTOR);
  return promote ?? DEFAULT_TARGET_NAMES.promote;
}
