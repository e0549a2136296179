import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NX_VERSION, REPO_ROOT } from '../fixture-workspace/paths';

const readJson = (path: string) => JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8'));

/** Per file, its reason (every test runs) or its tests by name, each with its reason (ADR 28). */
type EveryVersion = Record<string, string | Record<string, string>>;

const ownVersion = NX_VERSION === readJson('package.json').devDependencies.nx;
const everyVersion: EveryVersion = readJson('e2e/nx-versions.json').everyVersion;

/**
 * Every test on the repository's own Nx; on another version the files of e2e/nx-versions.json,
 * of each only the tests it names when it names some. The listed tests run Nx's plugin workers,
 * the others the plugin in Nx's main process (support/e2e-environment.js).
 */
const matrix = ownVersion
  ? { testMatch: ['<rootDir>/tests/**/*.e2e.ts'] }
  : { testMatch: Object.keys(everyVersion).map((file) => `<rootDir>/tests/${file}`) };

export default {
  displayName: 'e2e',
  preset: '../jest.preset.js',
  rootDir: '.',
  ...matrix,
  testEnvironment: '<rootDir>/support/e2e-environment.js',
  testEnvironmentOptions: { nxTests: everyVersion, selectOnly: !ownVersion },
  globalSetup: '<rootDir>/../fixture-workspace/template.ts',
  // Real dbt, git and Nx: minutes, not milliseconds. Hooks get the same (they build workspaces).
  testTimeout: 10 * 60_000,
};
