import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NX_VERSION, REPO_ROOT, TEMPLATE_DIR, VENV_BIN } from './paths';

/**
 * Packs the plugin as it would be published and installs it, with Nx, into a template folder
 * whose node_modules every test workspace links to: one npm install per change of the plugin.
 */
export default function installTemplate(): void {
  if (!existsSync(join(VENV_BIN, 'dbt'))) {
    throw new Error(`no dbt in ${VENV_BIN}: run 'npm run setup' (npm test does it first).`);
  }
  // npm test packages once for the suites of both Nx versions, which run side by side.
  const tarball =
    process.env.E2E_TARBALL ??
    join(
      REPO_ROOT,
      execFileSync('bash', ['scripts/package.sh'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim().split('\n').pop()!,
    );
  const stamp = createHash('sha256').update(readFileSync(tarball)).update(NX_VERSION).digest('hex');
  const stampFile = join(TEMPLATE_DIR, '.stamp');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return;
  rmSync(TEMPLATE_DIR, { recursive: true, force: true });
  mkdirSync(TEMPLATE_DIR, { recursive: true });
  writeFileSync(join(TEMPLATE_DIR, 'package.json'), JSON.stringify({ name: 'e2e-template', private: true }) + '\n');
  execFileSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', '--save-dev', `nx@${NX_VERSION}`, tarball],
    { cwd: TEMPLATE_DIR, stdio: 'inherit' },
  );
  writeFileSync(stampFile, stamp);
}
