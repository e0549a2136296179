/**
 * Nx's logger, the one @nx/devkit re-exports, taken from the module Nx's task process has loaded
 * already: loading @nx/devkit itself there costs every build a few tenths of a second.
 */
export { logger } from 'nx/src/utils/logger';
