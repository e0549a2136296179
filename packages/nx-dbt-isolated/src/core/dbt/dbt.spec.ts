import { chmodSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import {
  dbtArgs,
  dbtEnvironment,
  dbtPython,
  findDbt,
  refusePluginOwnedArgs,
  requirePythonDbt,
  schemasInManifest,
  storesAllTestFailures,
  summarizeRunResults,
} from './dbt';
import { UserError } from '../workspace/errors';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import { thrown } from '../testing/thrown';

describe('dbtArgs', () => {
  const where = {
    projectDir: '/ws/.dot/abcd1234/worktree/analytics',
    profilesDir: '/ws/.dot/abcd1234/analytics/dev/profiles',
    target: 'dev',
    targetPath: '/ws/.dot/abcd1234/analytics/dev/target',
    logPath: '/ws/.dot/abcd1234/analytics/dev/logs',
  };
  const locations = [
    '--project-dir',
    where.projectDir,
    '--profiles-dir',
    where.profilesDir,
    '--target',
    'dev',
    '--target-path',
    where.targetPath,
    '--log-path',
    where.logPath,
  ];

  it('passes the command and every location, and nothing else by default', () => {
    expect(dbtArgs('build', where)).toEqual(['build', ...locations]);
    expect(dbtArgs('run', where, {})).toEqual(['run', ...locations]);
  });

  it('adds every selection option, each value as its own argument', () => {
    const args = dbtArgs('build', where, {
      select: ['stg_orders+', 'tag:daily'],
      exclude: ['legacy'],
      selector: 'nightly',
      vars: '{"day": "2024-01-01"}',
      threads: 4,
      fullRefresh: true,
      extraArgs: ['--fail-fast', '--warn-error'],
    });
    expect(args).toEqual([
      'build',
      ...locations,
      '--select',
      'stg_orders+',
      'tag:daily',
      '--exclude',
      'legacy',
      '--selector',
      'nightly',
      '--vars',
      '{"day": "2024-01-01"}',
      '--threads',
      '4',
      '--full-refresh',
      '--fail-fast',
      '--warn-error',
    ]);
  });

  it('leaves out empty lists, a false full refresh and an empty vars text, but keeps zero threads', () => {
    expect(dbtArgs('seed', where, { select: [], exclude: [], vars: '', fullRefresh: false, threads: 0 })).toEqual([
      'seed',
      ...locations,
      '--threads',
      '0',
    ]);
  });
});

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

describe('findDbt', () => {
  let root: string;
  let workspace: string;
  let binA: string;
  let binB: string;

  /** Writes an executable (or, with mode 0o644, a plain file) and returns its path. */
  function fakeDbt(path: string, mode = 0o755): string {
    writeFiles('/', { [path]: '#!/bin/sh\necho fake dbt\n' });
    chmodSync(path, mode);
    return path;
  }

  beforeEach(() => {
    root = makeTempDir();
    workspace = join(root, 'ws');
    binA = join(root, 'bin-a');
    binB = join(root, 'bin-b');
    [workspace, binA, binB].forEach((dir) => mkdirSync(dir, { recursive: true }));
  });
  afterEach(() => removeDir(root));

  const path = (...dirs: string[]) => dirs.join(delimiter);

  it('prefers the option over the workspace virtualenv and PATH', () => {
    const option = fakeDbt(join(root, 'custom', 'dbt'));
    fakeDbt(join(workspace, '.venv/bin/dbt'));
    fakeDbt(join(binA, 'dbt'));
    expect(findDbt(workspace, option, path(binA))).toBe(option);
  });

  it('takes a relative option from the workspace root and a bare name from PATH', () => {
    const relative = fakeDbt(join(workspace, 'tools/dbt'));
    expect(findDbt(workspace, 'tools/dbt', path(binA))).toBe(relative);
    const named = fakeDbt(join(binB, 'dbt-1.8'));
    expect(findDbt(workspace, 'dbt-1.8', path(binA, binB))).toBe(named);
  });

  it('refuses an option that is not an executable file', () => {
    fakeDbt(join(workspace, 'tools/dbt'), 0o644);
    const error = thrown(() => findDbt(workspace, 'tools/dbt', path(binA)));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain("'tools/dbt'");
  });

  it('takes <workspace>/.venv/bin/dbt before PATH', () => {
    const venv = fakeDbt(join(workspace, '.venv/bin/dbt'));
    fakeDbt(join(binA, 'dbt'));
    expect(findDbt(workspace, undefined, path(binA))).toBe(venv);
  });

  it('falls back to the first executable dbt on PATH', () => {
    fakeDbt(join(workspace, '.venv/bin/dbt'), 0o644);
    fakeDbt(join(binA, 'dbt'), 0o644);
    const onPath = fakeDbt(join(binB, 'dbt'));
    expect(findDbt(workspace, undefined, path('', binA, binB))).toBe(onPath);
  });

  // A folder passes the X_OK check (folders are searchable), e.g. a dbt repository in a folder on PATH.
  it('skips a folder named dbt on PATH', () => {
    mkdirSync(join(binA, 'dbt'));
    const onPath = fakeDbt(join(binB, 'dbt'));
    expect(findDbt(workspace, undefined, path(binA, binB))).toBe(onPath);
  });

  it('says how to install dbt when there is none', () => {
    const error = thrown(() => findDbt(workspace, undefined, path(binA, binB)));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(join(workspace, '.venv/bin'));
    expect(error.message).toContain('pip install dbt-core dbt-duckdb');
    expect(error.message).toContain('dbtExecutable');
  });
});

describe('run artifacts', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  const write = (name: string, content: unknown) => {
    writeFiles(dir, { [name]: typeof content === 'string' ? content : JSON.stringify(content) });
    return join(dir, name);
  };

  describe('summarizeRunResults', () => {
    it('counts results by status and lists errors and failures with their messages', () => {
      const file = write('run_results.json', {
        results: [
          { unique_id: 'model.a.orders', status: 'success', message: 'SELECT 3' },
          { unique_id: 'model.a.customers', status: 'success', message: 'SELECT 2' },
          { unique_id: 'model.a.broken', status: 'error', message: 'Binder Error: column x' },
          { unique_id: 'test.a.not_null_orders_id', status: 'fail', message: null },
          { unique_id: 'test.a.unique_orders_id', status: 'pass' },
          { unique_id: 'model.a.after_broken', status: 'skipped' },
          { unique_id: 'test.a.warned', status: 'warn', message: 'Got 1 result' },
        ],
      });
      expect(summarizeRunResults(file)).toEqual({
        byStatus: { success: 2, error: 1, fail: 1, pass: 1, skipped: 1, warn: 1 },
        byType: { model: { success: 2, error: 1, skipped: 1 }, test: { fail: 1, pass: 1, warn: 1 } },
        failures: [
          { node: 'model.a.broken', message: 'Binder Error: column x' },
          { node: 'test.a.not_null_orders_id', message: '' },
        ],
      });
    });

    it('gives nothing for a missing or unreadable file', () => {
      expect(summarizeRunResults(join(dir, 'missing.json'))).toBeUndefined();
      expect(summarizeRunResults(write('broken.json', '{"results": ['))).toBeUndefined();
    });
  });

  describe('schemasInManifest', () => {
    it('lists the schemas of materialised models, seeds and snapshots, once each and sorted', () => {
      const file = write('manifest.json', {
        nodes: {
          'model.a.orders': { resource_type: 'model', schema: 'main_abcd1234', config: { materialized: 'table' } },
          'model.a.customers': { resource_type: 'model', schema: 'main_abcd1234', config: { materialized: 'view' } },
          'model.a.marts': { resource_type: 'model', schema: 'main_abcd1234_marts', config: { materialized: 'table' } },
          'model.a.helper': { resource_type: 'model', schema: 'ephemeral_only', config: { materialized: 'ephemeral' } },
          'seed.a.countries': { resource_type: 'seed', schema: 'main_abcd1234_seeds', config: {} },
          'snapshot.a.orders_snap': { resource_type: 'snapshot', schema: 'snapshots', config: {} },
          'test.a.not_null': { resource_type: 'test', schema: 'main_abcd1234_dbt_test__audit', config: {} },
          'analysis.a.report': { resource_type: 'analysis', schema: 'analysis_only', config: {} },
          'operation.a.hook': { resource_type: 'operation', schema: 'hook_only' },
        },
      });
      expect(schemasInManifest(file)).toEqual([
        'main_abcd1234',
        'main_abcd1234_marts',
        'main_abcd1234_seeds',
        'snapshots',
      ]);
    });

    it('adds the audit schema of tests that store their failures', () => {
      const file = write('manifest.json', {
        nodes: {
          'test.a.unique': {
            resource_type: 'test',
            schema: 'main_abcd1234_dbt_test__audit',
            config: { store_failures: true },
          },
          'test.a.accepted': {
            resource_type: 'test',
            schema: 'main_abcd1234_audit',
            config: { store_failures_as: 'view' },
          },
          'test.a.not_null': { resource_type: 'test', schema: 'not_stored', config: { store_failures: null } },
        },
      });
      expect(schemasInManifest(file)).toEqual(['main_abcd1234_audit', 'main_abcd1234_dbt_test__audit']);
    });

    it('adds the schemas of functions, which dbt 1.11 keeps apart from the nodes', () => {
      const file = write('manifest.json', {
        nodes: {},
        functions: {
          'function.a.is_positive_int': { resource_type: 'function', schema: 'main_abcd1234_udfs', config: {} },
        },
      });
      expect(schemasInManifest(file)).toEqual(['main_abcd1234_udfs']);
    });

    it('adds the audit schema of every test when dbt stores all failures', () => {
      const file = write('manifest.json', {
        nodes: { 'test.a.not_null': { resource_type: 'test', schema: 'dbt_test__audit', config: {} } },
      });
      expect(schemasInManifest(file)).toEqual([]);
      expect(schemasInManifest(file, { allTestFailures: true })).toEqual(['dbt_test__audit']);
    });

    it('gives no schemas for a missing or unreadable manifest', () => {
      expect(schemasInManifest(join(dir, 'missing.json'))).toEqual([]);
      expect(schemasInManifest(write('broken.json', 'not json'))).toEqual([]);
    });
  });
});

// The run that executes is the run that was checked (issue 14, 1.2).
describe('refusePluginOwnedArgs', () => {
  it.each([
    [['--profiles-dir', '/ws/analytics'], '--profiles-dir', 'the profilesDir option'],
    [['--vars', '{publish: true}'], '--vars', 'the vars option'],
    [['--vars={publish: true}'], '--vars', 'the vars option'],
    [['--target', 'prod'], '--target', 'the target option'],
    [['-t', 'prod'], '-t', 'the target option'],
    [['-tprod'], '-t', 'the target option'],
    [['--fail-fast', '-xt', 'prod'], '-t', 'the target option'],
    [['--profile', 'prod_profile'], '--profile', "'profile:' in dbt_project.yml"],
    [['--project-dir', '/elsewhere'], '--project-dir', 'the Nx project it runs for'],
    [['--target-path', '/tmp/t'], '--target-path', 'the plugin (the build folder under .dot)'],
    [['--defer', '--state', 'prod-artifacts'], '--defer', 'the deferTo option'],
  ])('refuses %j in one line naming %s and the option to use', (args, flag, option) => {
    const error = thrown(() => refusePluginOwnedArgs(args));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `args holds ${flag}, which the plugin sets itself so that dbt runs exactly what the isolation check read: use ${option} instead, and remove ${flag} from args.`,
    );
  });

  it('lets through flags that change neither the profile, the vars nor the manifest', () => {
    expect(() =>
      refusePluginOwnedArgs(['--fail-fast', '-x', '--store-failures', '--empty', '--select', 'tag:nightly', '-q']),
    ).not.toThrow();
    expect(() => refusePluginOwnedArgs(undefined)).not.toThrow();
  });
});

describe('storesAllTestFailures', () => {
  it('is true for --store-failures in args or a true DBT_STORE_FAILURES, as dbt reads them', () => {
    expect(storesAllTestFailures(['--store-failures'], {})).toBe(true);
    expect(storesAllTestFailures([], { DBT_STORE_FAILURES: 'True' })).toBe(true);
    expect(storesAllTestFailures([], { DBT_ENGINE_STORE_FAILURES: '1' })).toBe(true);
    expect(storesAllTestFailures([], { DBT_STORE_FAILURES: 'false' })).toBe(false);
    expect(storesAllTestFailures(['--fail-fast'], {})).toBe(false);
  });
});

describe('requirePythonDbt', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  const script = (name: string, text: string) => {
    writeFiles(dir, { [name]: text });
    chmodSync(join(dir, name), 0o755);
    return join(dir, name);
  };

  it("gives the python of a console script's shebang", () => {
    const python = script('venv/bin/python3', '#!/bin/sh\n');
    const dbt = script('venv/bin/dbt', `#!${python}\n# -*- coding: utf-8 -*-\nfrom dbt.cli.main import cli\n`);
    expect(requirePythonDbt(dbt)).toBe(python);
  });

  it('reads the sh launcher pip writes for a python whose path is long or has spaces', () => {
    const python = script('my venv/bin/python3.11', '#!/bin/sh\n');
    const dbt = script('my venv/bin/dbt', `#!/bin/sh\n'''exec' "${python}" "$0" "$@"\n' '''\nimport re\n`);
    expect(dbtPython(dbt)).toBe(python);
    expect(requirePythonDbt(dbt)).toBe(python);
    const long = script(`${'deep/'.repeat(30)}bin/python3`, '#!/bin/sh\n');
    const unquoted = script('long/bin/dbt', `#!/bin/sh\n'''exec' ${long} "$0" "$@"\n' '''\n`);
    expect(dbtPython(unquoted)).toBe(long);
  });

  it('refuses a wrapper script, which could run anything once the check has passed', () => {
    const wrapper = script('dbt-wrapper', '#!/bin/sh\nexec /ws/.venv/bin/dbt "$@" --profiles-dir /prod\n');
    const error = thrown(() => requirePythonDbt(wrapper));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `dbt executable ${wrapper} cannot run an isolated build: it is not a Python dbt console script (its first line names no python), so the plugin could not run dbt on the manifest its isolation check read; point dbtExecutable at the dbt inside a Python environment (such as .venv/bin/dbt, or what 'pyenv which dbt' prints).`,
    );
  });

  it('refuses a console script whose python is gone, naming it', () => {
    const dbt = script('dbt', `#!${join(dir, 'deleted/bin/python3')}\n`);
    expect(thrown(() => requirePythonDbt(dbt)).message).toContain(
      `the Python it names (${join(dir, 'deleted/bin/python3')}) is not an executable file`,
    );
  });
});
