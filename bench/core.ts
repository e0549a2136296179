/**
 * The plugin internals a benchmark times directly, apart from Nx and dbt: bench/monorepo.ts's
 * sparse against full checkout is a micro-benchmark of core/git. Every other benchmark measures
 * through the nx CLI of a workspace with the packaged plugin (docs/performance.md).
 */
export { ensureCheckout, removeCheckout } from '../packages/nx-dbt-isolated/src/core/git/checkout';
export { checkoutScope, type CheckoutFolders } from '../packages/nx-dbt-isolated/src/core/git/sparse';
