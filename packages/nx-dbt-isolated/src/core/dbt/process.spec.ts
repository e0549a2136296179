import { dbtEnvironment } from './process';

describe('dbtEnvironment', () => {
  it('drops DBT_TARGET and turns telemetry off by default, keeping everything else', () => {
    const base = { PATH: '/usr/bin', DBT_TARGET: 'prod', DBT_PROFILES_DIR: '/p' };
    const env = dbtEnvironment(base);
    expect(env).toEqual({ PATH: '/usr/bin', DBT_PROFILES_DIR: '/p', DBT_SEND_ANONYMOUS_USAGE_STATS: 'false' });
    expect(env).not.toHaveProperty('DBT_TARGET');
    expect(base.DBT_TARGET).toBe('prod');
  });

  it("keeps the user's own telemetry setting", () => {
    expect(dbtEnvironment({ DBT_SEND_ANONYMOUS_USAGE_STATS: 'true' }).DBT_SEND_ANONYMOUS_USAGE_STATS).toBe('true');
  });
});
