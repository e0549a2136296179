import { buildHold, claimedReason, claimStatements, keepsClaims, schemaLockStatements } from './claims';
import { workspaceId } from '../build/records';
import { buildRecord } from '../testing/build-record';
import { makeTempDir, removeDir } from '../testing/git-repo';

const postgres = { type: 'postgres', location: '127.0.0.1:5432/test' };

describe('claims: which warehouses, and what a build holds', () => {
  let workspaceRoot: string;
  beforeEach(() => (workspaceRoot = makeTempDir()));
  afterEach(() => removeDir(workspaceRoot));

  it('keeps claims in PostgreSQL only, whose advisory locks die with the session', () => {
    expect(keepsClaims(postgres)).toBe(true);
    expect(keepsClaims({ type: 'duckdb', location: '/ws/warehouse.duckdb' })).toBe(false);
    expect(keepsClaims({ type: 'snowflake', location: 'acme/db' })).toBe(false);
  });

  it('locks on one key per isolated schema, the same whether waiting or trying once', () => {
    const { lock, tryLock } = schemaLockStatements("analytics_abcd1234'x");
    expect(lock).toBe("select pg_advisory_lock(hashtextextended('nx-dbt-isolated:analytics_abcd1234''x', 0))");
    expect(tryLock).toBe(lock.replace('pg_advisory_lock', 'pg_try_advisory_lock'));
    expect(schemaLockStatements('analytics_ef567890').lock).not.toBe(lock);
  });

  it("hands parse-then-run.py the schema's lock and this workspace's claim, to write once dbt succeeded", () => {
    const record = buildRecord({ warehouse: postgres, schema: 'analytics_abcd1234' });
    const lines: string[] = [];
    const hold = buildHold(record, workspaceRoot, { info: (line) => lines.push(line) })!;
    expect(hold.args[0]).toBe('--hold');
    const passed = JSON.parse(hold.args[1]);
    expect(passed).toMatchObject(schemaLockStatements('analytics_abcd1234'));
    expect(passed.afterSuccess.join('\n')).toContain(`'${workspaceId(workspaceRoot)}'`);
    expect(passed.afterSuccess.at(-1)).toMatch(/^insert into "analytics_abcd1234"."nx_dbt_isolated_claims" values/);
    hold.onWait();
    expect(lines).toEqual([
      "waiting for another workspace's build or clean of analytics at abcd12340000 into analytics_abcd1234 (127.0.0.1:5432/test) to finish",
    ]);
  });

  it('holds nothing on DuckDB, nor for compile, which writes nothing into the warehouse', () => {
    const reporter = { info: () => undefined };
    expect(buildHold(buildRecord(), workspaceRoot, reporter)).toBeUndefined();
    expect(
      buildHold(buildRecord({ warehouse: postgres, command: 'compile' }), workspaceRoot, reporter),
    ).toBeUndefined();
  });

  it("replaces the workspace's own row of the project, and no other", () => {
    const claim = {
      schema: 's_1',
      project: 'analytics',
      commit: 'c',
      workspace: 'w-1',
      workspacePath: '/ws',
      how: 'built' as const,
    };
    const statements = claimStatements(claim, '2026-12-01T00:00:00Z');
    expect(statements[2]).toBe(
      `delete from "s_1"."nx_dbt_isolated_claims" where workspace_id = 'w-1' and project = 'analytics'`,
    );
  });

  it('says which workspaces still claim a schema, or that an older build recorded none', () => {
    const b = { workspace: 'b', where: 'host:/clones/b', how: 'restored', at: '2026-12-01T10:00:00Z' };
    const c = { workspace: 'c', where: 'ci:/build/c', how: 'built', at: '2026-12-01T11:00:00Z' };
    expect(claimedReason([b])).toBe(
      'still claimed by another workspace: host:/clones/b (restored 2026-12-01T10:00:00Z)',
    );
    expect(claimedReason([b, c])).toBe(
      'still claimed by 2 other workspaces: host:/clones/b (restored 2026-12-01T10:00:00Z), ci:/build/c (built 2026-12-01T11:00:00Z)',
    );
    expect(claimedReason([])).toBe(
      'built by another workspace, which recorded no claim (an older build): clean it there',
    );
  });
});
