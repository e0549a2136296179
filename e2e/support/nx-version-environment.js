// The jest environment of the e2e runs on an Nx version other than the repository's own (ADR 28,
// e2e/jest.config.ts sets it): in a file that e2e/nx-versions.json selects tests of, every test
// not named there, itself or by a describe block around it, is skipped before the file runs. A
// skipped test counts as skipped, not passed, and jest-circus runs no hook of a describe block
// left with no test to run. A listed name that names nothing fails the file: a renamed test must
// not drop out of the other versions unnoticed.
const { TestEnvironment } = require('jest-environment-node');
const { basename } = require('node:path');

class NxVersionEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.file = basename(context.testPath);
    this.selected = config.projectConfig.testEnvironmentOptions.selectedTests?.[this.file];
  }

  handleTestEvent(event, state) {
    if (event.name === 'run_start' && this.selected) skipUnselected(state.rootDescribeBlock, this.selected, this.file);
  }
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

module.exports = NxVersionEnvironment;
