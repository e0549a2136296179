import { accessSync, closeSync, constants, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../workspace/errors';
import { readdirOrEmpty } from '../workspace/files';

export const INSTALL_HINT =
  "install it with 'python3 -m venv .venv && .venv/bin/pip install dbt-core dbt-duckdb' in the workspace root, or set the executor option dbtExecutable";

/** Finds dbt: the executor option, else `<workspaceRoot>/.venv/bin/dbt`, else `dbt` on PATH. */
export function findDbt(workspaceRoot: string, option: string | undefined, pathEnv = process.env.PATH ?? ''): string {
  if (option) {
    const candidate =
      isAbsolute(option) || option.includes('/') ? resolve(workspaceRoot, option) : findOnPath(option, pathEnv);
    if (candidate && isExecutable(candidate)) return candidate;
    throw new UserError(
      `dbt executable '${option}' (dbtExecutable option) is not an executable file: fix the path, or ${INSTALL_HINT.replace(', or set the executor option dbtExecutable', '')}.`,
    );
  }
  const venvDbt = join(workspaceRoot, '.venv', 'bin', 'dbt');
  if (isExecutable(venvDbt)) return venvDbt;
  const onPath = findOnPath('dbt', pathEnv);
  if (onPath) return onPath;
  throw new UserError(`dbt was not found in ${join(workspaceRoot, '.venv/bin')} nor on PATH: ${INSTALL_HINT}.`);
}

function findOnPath(name: string, pathEnv: string): string | undefined {
  return pathEnv
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(isExecutable);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The Python of a dbt console script, which a build needs: only a run in that Python can be
 * handed the manifest the isolation check read. A wrapper (a shell script, a pyenv shim) could
 * run anything once the check has passed, so it is refused.
 */
export function requirePythonDbt(dbt: string): string {
  const python = dbtPython(dbt);
  if (python && isExecutable(python)) return python;
  const why = python
    ? `the Python it names (${python}) is not an executable file`
    : 'it is not a Python dbt console script (its first line names no python)';
  throw new UserError(
    `dbt executable ${dbt} cannot run an isolated build: ${why}, so the plugin could not run dbt on the manifest its isolation check read; point dbtExecutable at the dbt inside a Python environment (such as .venv/bin/dbt, or what 'pyenv which dbt' prints).`,
  );
}

/** The `#!/bin/sh` launcher pip writes when the python's path is too long (bare) or has spaces (quoted). */
const SH_LAUNCHER = /^'''exec' (?:"([^"]+)"|(\S+)) "\$0" "\$@"/;

/** The python a dbt console script runs (its shebang's, or its sh launcher's); undefined for anything else. */
export function dbtPython(dbt: string): string | undefined {
  const [first = '', second = ''] = readFirstLines(dbt);
  const launcher = first.trim() === '#!/bin/sh' ? SH_LAUNCHER.exec(second) : null;
  const launched = launcher ? (launcher[1] ?? launcher[2]) : undefined;
  const interpreter = launched ?? (first.startsWith('#!') ? first.slice(2).trim().split(/\s+/)[0] : undefined);
  return interpreter && /^python[\d.]*$/.test(basename(interpreter)) ? interpreter : undefined;
}

/** The site-packages folders of the environment `python` (its `bin/python`) belongs to. */
export function sitePackagesOf(python: string): string[] {
  const lib = join(dirname(dirname(python)), 'lib');
  return readdirOrEmpty(lib)
    .filter((name) => name.startsWith('python'))
    .map((version) => join(lib, version, 'site-packages'));
}

/** What pip writes below the interpreter line of dbt's console script: only dbt's own entry point runs. */
const PIP_CONSOLE_SCRIPT = `# -*- coding: utf-8 -*-
import re
import sys
from dbt.cli.main import cli
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(cli())
`;

/**
 * The Python of `dbt` when `dbt` is pip's dbt console script, run by that Python without
 * interpreter flags: what the dbt host (host.ts) can stand in for. Any other script (a wrapper
 * that loads secrets first, say) runs only as itself.
 */
export function consoleScriptPython(dbt: string): string | undefined {
  const python = dbtPython(dbt);
  if (!python) return undefined;
  const lines = readFileSync(dbt, 'utf8').slice(0, 4096).split('\n');
  const launcher = lines[0].trim() === '#!/bin/sh';
  const flagged = !launcher && lines[0].slice(2).trim().split(/\s+/).length > 1;
  const body = lines.slice(launcher ? 3 : 1).join('\n');
  return !flagged && body === PIP_CONSOLE_SCRIPT ? python : undefined;
}

function readFirstLines(file: string): string[] {
  const buffer = Buffer.alloc(1024);
  const fd = openSync(file, 'r');
  try {
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString('utf8').split('\n').slice(0, 2);
  } finally {
    closeSync(fd);
  }
}
