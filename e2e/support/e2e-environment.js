// The jest environment of every e2e file (e2e/jest.config.ts sets it, with e2e/nx-versions.json's
// `everyVersion` as `nxTests` and, on an Nx version other than the repository's own, `selectOnly`).
//
// Where Nx runs the plugin (ADR 32): the tests e2e/nx-versions.json lists exercise how Nx and the
// plugin meet, so they run with Nx's default, each plugin in a worker process of its own, as users
// run it (a file listed with one reason: all of it, hooks included). Everything else tests what the
// plugin does, and runs it in Nx's main process (NX_ISOLATE_PLUGINS=false, a mode Nx supports),
// which spares each nx command the start-up of four plugin workers.
//
// On an Nx version other than the repository's own (ADR 28): in a file that e2e/nx-versions.json
// selects tests of, every test not named there, itself or by a describe block around it, is
// skipped before the file runs. A skipped test counts as skipped, not passed, and jest-circus runs
// no hook of a describe block left with no test to run. A listed name that names nothing fails the
// file: a renamed test must not drop out of the other versions unnoticed.
const { TestEnvironment } = require('jest-environment-node');
const { basename } = require('node:path');

class E2eEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    const { nxTests, selectOnly } = config.projectConfig.testEnvironmentOptions;
    this.file = basename(context.testPath);
    const listed = nxTests[this.file];
    this.wholeFile = typeof listed === 'string';
    this.names = typeof listed === 'object' ? Object.keys(listed) : [];
    this.selectOnly = selectOnly;
    this.usePluginWorkers(this.wholeFile);
  }

  usePluginWorkers(workers) {
    if (workers) delete this.global.process.env.NX_ISOLATE_PLUGINS;
    else this.global.process.env.NX_ISOLATE_PLUGINS = 'false';
  }

  handleTestEvent(event, state) {
    if (event.name === 'run_start' && this.selectOnly && this.names.length > 0) {
      skipUnselected(state.rootDescribeBlock, this.names, this.file);
    }
    if (this.wholeFile || this.names.length === 0) return;
    if (event.name === 'test_start') this.usePluginWorkers(isNamed(event.test, this.names));
    if (event.name === 'test_done') this.usePluginWorkers(false);
  }
}

/** Whether the test or a describe block around it has one of `names`. */
function isNamed(test, names) {
  for (let block = test; block; block = block.parent) if (names.includes(block.name)) return true;
  return false;
}

/** Marks each test neither named nor inside a named describe block as skipped; throws for a name that matches nothing. */
function skipUnselected(root, names, file) {
  const matched = new Set();
  const visit = (block, selected) => {
    for (const child of block.children) {
      const named = names.includes(child.name);
      if (named) matched.add(child.name);
      if (child.type === 'describeBlock') visit(child, selected || named);
      else if (!selected && !named) child.mode = 'skip';
    }
  };
  visit(root, false);
  const unmatched = names.filter((name) => !matched.has(name));
  if (unmatched.length > 0) {
    throw new Error(
      `e2e/nx-versions.json selects tests of ${file} that it does not have (renamed?): ${unmatched.map((name) => `'${name}'`).join(', ')}`,
    );
  }
}

module.exports = E2eEnvironment;
