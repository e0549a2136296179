import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const WORKSPACE = join(__dirname, '../../..');

/**
 * The no-restricted-imports messages the repository's ESLint config gives each case's code as if
 * it were the file at its path (relative to src/). ESLint loads its flat config with a dynamic
 * import, which jest's module system refuses, so one node process lints every case.
 */
function importErrors(cases: [path: string, code: string][]): string[][] {
  const script = `
    const { ESLint } = require('eslint');
    const cases = JSON.parse(process.argv[1]);
    (async () => {
      const eslint = new ESLint({ cwd: ${JSON.stringify(WORKSPACE)} });
      const found = [];
      for (const [filePath, code] of cases) {
        const [result] = await eslint.lintText(code, { filePath });
        found.push(result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message));
      }
      process.stdout.write(JSON.stringify(found));
    })();`;
  const files = cases.map(([path, code]) => [join(__dirname, path), `${code}\nexport const b = a;\n`]);
  const output = execFileSync(process.execPath, ['-e', script, JSON.stringify(files)], {
    cwd: WORKSPACE,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(output) as string[][];
}

describe("the lint guard that keeps core/ free of Nx and of the plugin's adapters", () => {
  it('refuses an import of Nx or of an adapter from core/ at any depth, and allows core-to-core and adapter-to-core', () => {
    const refused: [string, string][] = [
      ['core/x.ts', "import { a } from '../plugin/nodes';"],
      ['core/diff/x.ts', "import { a } from '../../plugin/nodes';"],
      ['core/diff/testing/x.ts', "import { a } from '../../../executors/diff/executor';"],
      ['core/diff/x.ts', "import { a } from '../../generators/init/generator';"],
      ['core/x.ts', "import { a } from '@nx/devkit';"],
    ];
    const allowed: [string, string][] = [
      ['core/diff/x.ts', "import { a } from '../files';"],
      ['core/x.ts', "import { a } from './diff/report';"],
      ['plugin/x.ts', "import { a } from '../core/files';"],
    ];
    const errors = importErrors([...refused, ...allowed]);
    expect(errors.slice(0, refused.length).map((messages) => messages.length)).toEqual(refused.map(() => 1));
    expect(errors.slice(refused.length)).toEqual(allowed.map(() => []));
  }, 90_000);
});
