import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.venv/', 'tmp/', '**/.dot/', 'coverage/', 'e2e/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        module: 'writable',
        require: 'readonly',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['packages/nx-dbt-isolated/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@nx/*', 'nx', 'nx/*'], message: 'core/ stays free of Nx.' },
            {
              // Any depth: core/diff/x.ts reaching '../../plugin/x' is the same escape as '../plugin/x'.
              regex: '^(\\.\\.?/)+(\\.\\./)*(plugin|executors|generators|index)(/|$)',
              message: 'core/ stays free of Nx: the Nx adapters import core, never the other way.',
            },
          ],
        },
      ],
    },
  },
);
