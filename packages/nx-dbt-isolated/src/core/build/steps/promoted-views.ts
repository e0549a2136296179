import { planRebuild, type PromotedRebuild, type RetirementPlan } from '../../promote/rebuild';
import type { BuildRecord } from '../records';
import { buildConnection, fullBuildCommand, promoteCommand, type BuildContext } from './context';

/** A rebuild of a promoted build and its plan to keep the views reading it answering (promote/rebuild.ts). */
export interface PromotedViews {
  rebuild: PromotedRebuild;
  retirement?: RetirementPlan;
}

/** Plans the rebuild before anything changes, the build's record included (see planRebuild). */
export async function planPromotedViews(context: BuildContext, record: BuildRecord): Promise<PromotedViews> {
  const rebuild = promotedRebuild(context, record);
  return { rebuild, retirement: await planRebuild(rebuild) };
}

/** What planRebuild and keepingPromotedViews need to keep the views reading this build answering while dbt replaces it. */
function promotedRebuild(context: BuildContext, record: BuildRecord): PromotedRebuild {
  const { request, paths, profile } = context;
  return {
    connection: buildConnection(context),
    warehouseType: profile.warehouse.type,
    command: request.command,
    build: { schema: profile.schema, buildId: record.buildId },
    // A retry replaces the nodes that failed and keeps the rest: never a whole new generation.
    partial: request.command === 'retry' ? '--command=retry' : record.contents!.partialBecause,
    fullCommand: fullBuildCommand(request),
    promoteCommand: promoteCommand(request),
    rebuilt: { record, paths },
    reporter: context.reporter,
    now: () => new Date(),
  };
}
