import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dbtEnvironment, startForwardingSignals } from './process';
import { stoppingGracefully } from '../workspace/stop';
import { makeTempDir, removeDir } from '../testing/git-repo';

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

/** Runs `executable` as the plugin runs dbt: output streamed, stop signals passed on. */
const runDbt = (executable: string, cwd: string) =>
  startForwardingSignals(executable, [], { cwd, env: process.env, stdio: 'inherit' }).exited;

/** These tests start a shell: on a loaded machine that alone can take seconds. */
const SPAWNS_A_PROCESS_MS = 30_000;

describe('stoppingGracefully', () => {
  const stopListeners = () => process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');

  it(
    'keeps a stop signal from ending the process for all of its work, and starts no dbt after one',
    async () => {
      const dir = makeTempDir('stopping-');
      const started = join(dir, 'started');
      const fakeDbt = join(dir, 'dbt');
      writeFileSync(fakeDbt, `#!/bin/sh\necho started >> ${started}\nexec sleep 30\n`, { mode: 0o755 });
      const before = stopListeners();

      const exits = await stoppingGracefully(async () => {
        const first = runDbt(fakeDbt, dir);
        // The shell makes the file before it writes the line: a signal in between leaves it empty.
        await waitFor(() => existsSync(started) && readFileSync(started, 'utf8') === 'started\n');
        process.emit('SIGINT', 'SIGINT');
        const stopped = await first;
        // The signal Nx sends after dbt has exited still finds a listener: the process goes on.
        expect(stopListeners()).toBeGreaterThan(before);
        process.emit('SIGTERM', 'SIGTERM');
        return [stopped, await runDbt(fakeDbt, dir)];
      });

      expect(exits.map((exit) => exit.interrupted)).toEqual([true, true]);
      expect(exits[0].signal).toBe('SIGINT');
      expect(readFileSync(started, 'utf8')).toBe('started\n');
      expect(stopListeners()).toBe(before);
      removeDir(dir);
    },
    SPAWNS_A_PROCESS_MS,
  );

  it(
    'forgets a stop once its scope has ended',
    async () => {
      const dir = makeTempDir('stopping-');
      const fakeDbt = join(dir, 'dbt');
      writeFileSync(fakeDbt, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      await stoppingGracefully(async () => process.emit('SIGINT', 'SIGINT'));
      await expect(runDbt(fakeDbt, dir)).resolves.toMatchObject({ code: 0, interrupted: false });
      removeDir(dir);
    },
    SPAWNS_A_PROCESS_MS,
  );
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
