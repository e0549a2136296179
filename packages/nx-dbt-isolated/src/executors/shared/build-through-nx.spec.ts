import { nestedEnvironment } from './build-through-nx';

describe('nestedEnvironment', () => {
  it("leaves out the outer task's command line, build keys and Nx task chain, and keeps the rest", () => {
    const outer = {
      PATH: '/usr/bin',
      NX_DAEMON: 'false',
      DBT_TARGET: 'ci',
      NX_DBT_ISOLATED_REF: 'main',
      NX_DBT_ISOLATED_KEY_ANALYTICS_ISOLATED_BUILD_12345678: 'key',
      NX_TASK_TARGET_PROJECT: 'analytics',
      NX_TASK_HASH: 'hash',
      NX_INVOCATION_ROOT_PID: '42',
      NX_TERMINAL_OUTPUT_PATH: '/ws/.nx/terminal',
    };
    expect(nestedEnvironment(outer)).toEqual({
      PATH: '/usr/bin',
      NX_DAEMON: 'false',
      DBT_TARGET: 'ci',
      NX_TUI: 'false',
    });
  });
});
