import type { ExecutorContext } from '@nx/devkit';
import { logger } from '../logger';
import { executeClean, existingSchemas, planClean, type CleanPlan, type CleanRequest } from '../../core/clean/clean';
import { buildRecord } from '../../core/testing/build-record';
import executor from './executor';
import { DBT_TARGET_FROM_CLI } from '../../contract';

jest.mock('../../core/clean/clean');
const plan = jest.mocked(planClean);
const execute = jest.mocked(executeClean);
const look = jest.mocked(existingSchemas);

const context = { root: '/ws', cwd: '/ws', projectName: 'analytics', isVerbose: false } as unknown as ExecutorContext;
const selected = {
  record: buildRecord(),
  paths: {},
  decision: { clean: true, reason: '--all' },
  schemas: ['main_abcd1234'],
  keptSchemas: [],
} as unknown as CleanPlan['builds'][number];
const onePlan: CleanPlan = { builds: [selected] };

describe('clean executor', () => {
  let errors: jest.SpyInstance;
  let infos: jest.SpyInstance;
  beforeEach(() => {
    errors = jest.spyOn(logger, 'error').mockImplementation(() => undefined);
    infos = jest.spyOn(logger, 'info').mockImplementation(() => undefined);
    plan.mockResolvedValue(onePlan);
    execute.mockResolvedValue([{ build: selected, status: 'cleaned', detail: 'dropped main_abcd1234' }]);
    look.mockResolvedValue(new Map([[selected, []]]));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    jest.resetAllMocks();
    delete process.env[DBT_TARGET_FROM_CLI];
  });
  const requestOfLastPlan = (): CleanRequest => plan.mock.calls[plan.mock.calls.length - 1][0];
  const printed = () => infos.mock.calls.map(([line]) => String(line)).join('\n');

  it('maps the options to a clean of the project, with main, master and tags protected by default', async () => {
    await expect(executor({ keep: 5, olderThan: '7d' }, context)).resolves.toEqual({ success: true });
    expect(requestOfLastPlan()).toMatchObject({
      workspaceRoot: '/ws',
      project: 'analytics',
      selector: { kind: 'filters', keep: 5, olderThan: { text: '7d' }, unreachable: false },
      protect: ['main', 'master', 'refs/tags'],
      dropSchemas: true,
      dbtTarget: undefined,
    });
    expect(printed()).toContain('Cleaned 1 build(s), kept 0');
  });

  it('takes the dbt target from the command line, which Nx keeps from the executor', async () => {
    process.env[DBT_TARGET_FROM_CLI] = 'ci';
    await executor({ all: true, target: 'dev', schemas: false, protect: ['release'] }, context);
    expect(requestOfLastPlan()).toMatchObject({ dbtTarget: 'ci', dropSchemas: false, protect: ['release'] });
  });

  it('prints the plan with the schemas that exist in a dry run, and cleans nothing', async () => {
    await expect(executor({ all: true, dryRun: true }, context)).resolves.toEqual({ success: true });
    expect(execute).not.toHaveBeenCalled();
    expect(printed()).toContain('Clean plan for analytics (dry run: nothing changed)');
    expect(printed()).toContain('drops main_abcd1234 (absent)');
  });

  it('fails when a build could not be cleaned, and succeeds when one was only skipped', async () => {
    execute.mockResolvedValueOnce([{ build: selected, status: 'failed', detail: 'dbt could not drop schemas' }]);
    await expect(executor({ all: true }, context)).resolves.toEqual({ success: false });
    execute.mockResolvedValueOnce([{ build: selected, status: 'skipped', detail: 'running now' }]);
    await expect(executor({ all: true }, context)).resolves.toEqual({ success: true });
  });

  it('reports bad options in one line and plans nothing', async () => {
    await expect(executor({ olderThan: 'soon' }, context)).resolves.toEqual({ success: false });
    expect(plan).not.toHaveBeenCalled();
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0][0]).toMatch(/^nx-dbt-isolated: --olderThan=soon is not an age: .*$/);
  });
});
