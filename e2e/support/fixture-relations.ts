/**
 * The relations a build of the fixture project makes, as `schema.name`, sorted: its models in
 * `schema`, the finance marts in `<schema>_finance`, the seeds in `<schema>_raw`. `extraModels`
 * are models a commit adds (feature/vip adds vip_customers).
 */
export function fixtureRelations(schema: string, extraModels: string[] = []): string[] {
  const models = [
    'countries',
    'customer_averages',
    'customers',
    'orders',
    'stg_customers',
    'stg_orders',
    'stg_payments',
  ];
  return [
    ...[...models, ...extraModels].map((name) => `${schema}.${name}`),
    ...['daily_revenue', 'payments_by_method'].map((name) => `${schema}_finance.${name}`),
    ...['raw_customers', 'raw_orders', 'raw_payments'].map((name) => `${schema}_raw.${name}`),
  ].sort();
}

/**
 * What a build of the fixture holds on PostgreSQL: its relations and the table naming the
 * workspaces that claim it (warehouse/claims.ts, ADR 20).
 */
export function postgresBuildRelations(schema: string, extraModels: string[] = []): string[] {
  return [...fixtureRelations(schema, extraModels), `${schema}.nx_dbt_isolated_claims`].sort();
}
