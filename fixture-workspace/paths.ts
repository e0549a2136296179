import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..');
/** The venv that scripts/setup.sh makes, with the pinned dbt. */
export const VENV_BIN = join(REPO_ROOT, '.venv', 'bin');
/** A folder with the packaged plugin and Nx installed from the registry, shared by every test workspace. */
export const TEMPLATE_DIR = process.env.E2E_TEMPLATE_DIR ?? join(REPO_ROOT, 'tmp', 'e2e-template');
export const NX_VERSION = process.env.E2E_NX_VERSION ?? '23.2.1';
/**
 * The fixtures' commit author. Nx keys its per-user cache on a repository's first commit, so
 * runs side by side (two Nx versions, or two runs of one: scripts/e2e-run.js sets E2E_RUN) must
 * never make the same commit.
 */
export const FIXTURE_AUTHOR = `Fixture Author (Nx ${NX_VERSION}, ${process.env.E2E_RUN ?? 'e2e'})`;
