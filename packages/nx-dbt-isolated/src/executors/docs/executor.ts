import { join, relative } from 'node:path';
import { logger } from '../logger';
import { runAtCommit } from '../../core/command/run-at-commit';
import { serveDocs } from '../../core/command/serve-docs';
import { findDbt } from '../../core/dbt/executable';
import { asList, varsText } from '../../plugin/build-keys';
import { checkoutAndDbt } from '../shared/checkout-options';
import { runExecutor } from '../shared/run-executor';
import { DEFAULT_TARGET_NAMES } from '../../contract';
import type { DocsExecutorOptions } from './schema';

export default runExecutor<DocsExecutorOptions>(
  {
    usage: 'docs runs on a project: nx run <project>:docs --ref=main.',
    carries: ['ref'],
    needsProjectRoot: true,
  },
  async ({ options, context, project, projectRoot, buildThroughNx }) => {
    const buildTarget = options.buildTarget ?? DEFAULT_TARGET_NAMES.isolatedBuild;
    const ref = String(options.ref ?? 'HEAD');
    const request = {
      workspaceRoot: context.root,
      projectRoot,
      project,
      ref,
      target: options.target,
      command: 'docs generate' as const,
      selection: {
        select: asList(options.select),
        vars: varsText(options.vars),
      },
      ...checkoutAndDbt(options),
      targetName: buildTarget,
      build: buildThroughNx(buildTarget, context.configurationName),
    };
    const server = { host: options.host ?? '127.0.0.1', port: options.port ?? 8080 };
    const dbt = findDbt(context.root, options.dbtExecutable, process.env.PATH);
    await runAtCommit(request, { info: (line) => logger.info(line) }, async (generated) => {
      const page = (file: string) => relative(context.root, join(generated.targetPath, file));
      logger.info(
        `Docs of ${project} at ${ref} (${generated.commit.slice(0, 12)}), schema ${generated.schema}: ${page('index.html')}; one self-contained page: ${page('static_index.html')}`,
      );
      if (options.serve === false) return;
      logger.info(`Serving them at http://${server.host}:${server.port} until Ctrl-C`);
      await serveDocs(dbt, generated, server, process.env);
    });
    return true;
  },
);
