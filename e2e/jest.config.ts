import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NX_VERSION, REPO_ROOT } from '../fixture-workspace/paths';

const readJson = (path: string) => JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8'));

/** Every file on the repository's own Nx; on another version the files of e2e/nx-versions.json (ADR 28). */
function testMatch(): string[] {
  if (NX_VERSION === readJson('package.json').devDependencies.nx) return ['<rootDir>/tests/**/*.e2e.ts'];
  return Object.keys(readJson('e2e/nx-versions.json').everyVersion).map((file) => `<rootDir>/tests/${file}`);
}

export default {
  displayName: 'e2e',
  preset: '../jest.preset.js',
  rootDir: '.',
  testMatch: testMatch(),
  globalSetup: '<rootDir>/../fixture-workspace/template.ts',
  // Real dbt, git and Nx: minutes, not milliseconds. Hooks get the same (they build workspaces).
  testTimeout: 10 * 60_000,
};
