import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NX_VERSION, REPO_ROOT } from '../fixture-workspace/paths';

const readJson = (path: string) => JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8'));

/** Per file, its reason (every test runs) or its tests by name, each with its reason (ADR 28). */
type EveryVersion = Record<string, string | Record<string, string>>;

const ownVersion = NX_VERSION === readJson('package.json').devDependencies.nx;
const everyVersion: EveryVersion = readJson('e2e/nx-versions.json').everyVersion;

/** The names e2e/nx-versions.json lists, of each file it runs some tests of. */
function selectedTests(): Record<string, string[]> {
  const entries = Object.entries(everyVersion).flatMap(([file, tests]) =>
    typeof tests === 'string' ? [] : [[file, Object.keys(tests)] as const],
  );
  return Object.fromEntries(entries);
}

/**
 * Every test on the repository's own Nx; on another version the files of e2e/nx-versions.json,
 * of each only the tests it names when it names some (support/nx-version-environment.js).
 */
const matrix = ownVersion
  ? { testMatch: ['<rootDir>/tests/**/*.e2e.ts'] }
  : {
      testMatch: Object.keys(everyVersion).map((file) => `<rootDir>/tests/${file}`),
      testEnvironment: '<rootDir>/support/nx-version-environment.js',
      testEnvironmentOptions: { selectedTests: selectedTests() },
    };

export default {
  displayName: 'e2e',
  preset: '../jest.preset.js',
  rootDir: '.',
  ...matrix,
  globalSetup: '<rootDir>/../fixture-workspace/template.ts',
  // Real dbt, git and Nx: minutes, not milliseconds. Hooks get the same (they build workspaces).
  testTimeout: 10 * 60_000,
};
