import { chmodSync, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { consoleScriptPython, dbtPython, findDbt, requirePythonDbt } from './executable';
import { UserError } from '../workspace/errors';
import { makeTempDir, removeDir, writeFiles } from '../testing/git-repo';
import { thrown } from '../testing/thrown';

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

/** A temporary folder for each test, and `script(name, text)` writing an executable file in it. */
function scriptFolder() {
  const folder = { dir: '' };
  beforeEach(() => (folder.dir = makeTempDir()));
  afterEach(() => removeDir(folder.dir));
  const script = (name: string, text: string) => {
    writeFiles(folder.dir, { [name]: text });
    chmodSync(join(folder.dir, name), 0o755);
    return join(folder.dir, name);
  };
  return { folder, script };
}

describe('requirePythonDbt', () => {
  const { folder, script } = scriptFolder();

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
    const dbt = script('dbt', `#!${join(folder.dir, 'deleted/bin/python3')}\n`);
    expect(thrown(() => requirePythonDbt(dbt)).message).toContain(
      `the Python it names (${join(folder.dir, 'deleted/bin/python3')}) is not an executable file`,
    );
  });
});

describe('consoleScriptPython', () => {
  const { script } = scriptFolder();

  const PIP_BODY =
    "# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom dbt.cli.main import cli\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit(cli())\n";
  it("gives the python of pip's dbt console script, the one the dbt host can stand in for", () => {
    const python = script('venv/bin/python3', '#!/bin/sh\n');
    expect(consoleScriptPython(script('venv/bin/dbt', `#!${python}\n${PIP_BODY}`))).toBe(python);
  });

  it('gives none for a Python wrapper of dbt, or a shebang with interpreter flags: those run as themselves', () => {
    const python = script('venv/bin/python3', '#!/bin/sh\n');
    const wrapper = script(
      'tools/dbt',
      `#!${python}\nimport os, sys\nos.environ['DBT_PASSWORD'] = open('/run/secrets/dbt').read()\nfrom dbt.cli.main import cli\nsys.exit(cli())\n`,
    );
    expect(dbtPython(wrapper)).toBe(python);
    expect(consoleScriptPython(wrapper)).toBeUndefined();
    expect(consoleScriptPython(script('venv/bin/dbt-s', `#!${python} -s\n${PIP_BODY}`))).toBeUndefined();
  });
});
