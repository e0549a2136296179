import type { ExecutorContext } from '@nx/devkit';
import { PROMOTE_EXECUTOR } from '../../contract';
import { promoteTargetOf } from './target-names';

const contextWith = (targets: Record<string, { executor: string }>): ExecutorContext =>
  ({
    projectsConfigurations: { projects: { analytics: { root: 'analytics', targets } } },
  }) as unknown as ExecutorContext;

describe('promoteTargetOf', () => {
  it('finds the promote target under the name the plugin options gave it', () => {
    expect(promoteTargetOf(contextWith({ publish: { executor: PROMOTE_EXECUTOR } }), 'analytics')).toBe('publish');
  });

  it("falls back to the plugin's default name when the project has no promote target", () => {
    expect(promoteTargetOf(contextWith({}), 'analytics')).toBe('promote');
  });
});
