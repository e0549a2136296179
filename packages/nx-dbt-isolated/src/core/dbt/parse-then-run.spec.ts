import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../testing/git-repo';
import { DBT_HOST_ENV } from './host';
import { runDbtParsedFirst, type ParsedRun } from './parse-then-run';

/** These tests start a shell: on a loaded machine that alone can take seconds. */
const SPAWNS_A_PROCESS_MS = 30_000;

/**
 * A stand-in for dbt's Python running parse-then-run.py: it speaks the protocol on file
 * descriptor 3 ("installed" when given --deps, then "parsed"), logs its arguments and the
 * plugin's answer, and exits 0 on "go", 3 on "stop".
 */
function fakePython(dir: string): { python: string; log: () => string[] } {
  const log = join(dir, 'log');
  const python = join(dir, 'python');
  writeFileSync(
    python,
    [
      '#!/bin/sh',
      `shift; echo "args $*" >> ${log}`,
      'if [ "$1" = "--deps" ]; then echo installed >&3; fi',
      'echo parsed >&3',
      'read -r answer <&3',
      `echo "answer $answer" >> ${log}`,
      '[ "$answer" = go ] && exit 0',
      'exit 3',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return { python, log: () => readFileSync(log, 'utf8').trim().split('\n') };
}

/** The stand-in is no Python a dbt host could run (host.spec.ts runs the real one through its host). */
const WITHOUT_HOST = { ...process.env, [DBT_HOST_ENV]: 'off' };

describe('runDbtParsedFirst', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir('parse-then-run-')));
  afterEach(() => removeDir(dir));

  it(
    'installs packages, parses, checks, then takes the command lock before dbt runs the command',
    async () => {
      const { python, log } = fakePython(dir);
      const events: string[] = [];
      const run: ParsedRun = {
        deps: { args: ['deps', '--project-dir', 'p'], installed: () => events.push('installed') },
        parseArgs: ['parse', '--project-dir', 'p'],
        commandArgs: ['build', '--project-dir', 'p'],
        check: () => {
          events.push('checked');
        },
        commandLock: async (command) => {
          events.push('locked');
          const exit = await command();
          events.push('unlocked');
          return exit;
        },
      };

      const exit = await runDbtParsedFirst(python, run, dir, WITHOUT_HOST);

      expect(exit).toMatchObject({ code: 0, installed: true, parsed: true, interrupted: false });
      expect(events).toEqual(['installed', 'checked', 'locked', 'unlocked']);
      expect(log()).toEqual([
        'args --deps ["deps","--project-dir","p"] parse --project-dir p --then build --project-dir p',
        'answer go',
      ]);
    },
    SPAWNS_A_PROCESS_MS,
  );

  it(
    'stops dbt before its command when the command lock cannot be taken, and rethrows why',
    async () => {
      const { python, log } = fakePython(dir);
      const run: ParsedRun = {
        parseArgs: ['parse'],
        commandArgs: ['build'],
        check: () => undefined,
        commandLock: () => Promise.reject(new Error('timed out waiting for lock duckdb-x')),
      };

      await expect(runDbtParsedFirst(python, run, dir, WITHOUT_HOST)).rejects.toThrow('timed out waiting for lock');
      expect(log()).toEqual(['args parse --then build', 'answer stop']);
    },
    SPAWNS_A_PROCESS_MS,
  );

  it(
    'returns how dbt ended when it died while the command lock was awaited, and the wait ends',
    async () => {
      const python = join(dir, 'python');
      writeFileSync(python, '#!/bin/sh\necho parsed >&3\nexit 7\n', { mode: 0o755 });
      const run: ParsedRun = {
        parseArgs: ['parse'],
        commandArgs: ['build'],
        check: () => undefined,
        commandLock: async (_command, exited) => {
          while (!exited()) await new Promise((resolve) => setTimeout(resolve, 20));
          throw new Error('gave up waiting for lock duckdb-x');
        },
      };
      await expect(runDbtParsedFirst(python, run, dir, WITHOUT_HOST)).resolves.toMatchObject({ code: 7, parsed: true });
    },
    SPAWNS_A_PROCESS_MS,
  );

  it(
    'runs no dbt deps unless asked, and says so in its exit',
    async () => {
      const { python, log } = fakePython(dir);
      const exit = await runDbtParsedFirst(
        python,
        { parseArgs: ['parse'], commandArgs: ['build'], check: () => undefined },
        dir,
        WITHOUT_HOST,
      );
      expect(exit).toMatchObject({ code: 0, installed: false, parsed: true });
      expect(log()).toEqual(['args parse --then build', 'answer go']);
    },
    SPAWNS_A_PROCESS_MS,
  );
});
