export default {
  displayName: 'e2e',
  preset: '../jest.preset.js',
  rootDir: '.',
  testMatch: ['<rootDir>/tests/**/*.e2e.ts'],
  globalSetup: '<rootDir>/support/global-setup.ts',
  // Real dbt, git and Nx: minutes, not milliseconds.
  testTimeout: 10 * 60_000,
};
