// Prints each failing test (its run, suite and name), the tests skipped (an Nx version other than
// the repository's own runs only some, ADR 28: they count neither as passed nor as failed), then
// 'tests: N passed, N failed' from jest's --json result files, as the last line (.ci/run reads
// it). A suite that could not run (no result file, or a suite that failed to load) counts as one
// failed test.
const { existsSync, readFileSync } = require('node:fs');
const { basename, relative } = require('node:path');

const isFailed = (test) => test.status === 'failed';

/** The failing tests of one result file, as lines naming the run, the suite and the test. */
function failuresOf(run, results) {
  return results.testResults.flatMap((suite) => {
    const where = `${run}: ${relative(process.cwd(), suite.name)}`;
    const failed = (suite.assertionResults ?? []).filter(isFailed);
    const lines = failed.map((test) => `  ${where} › ${test.fullName}`);
    return suite.testExecError || (suite.status === 'failed' && failed.length === 0)
      ? [`  ${where}: failed outside its tests (it could not load, or a hook failed)`, ...lines]
      : lines;
  });
}

let passed = 0;
let failed = 0;
const failures = [];
const skipped = [];
for (const file of process.argv.slice(2)) {
  const run = basename(file, '.json');
  if (!existsSync(file)) {
    failures.push(`  ${run}: no test results in ${file}: that run did not finish`);
    failed += 1;
    continue;
  }
  const results = JSON.parse(readFileSync(file, 'utf8'));
  passed += results.numPassedTests;
  // A suite that failed outside its tests (a hook) with none of its tests failed is counted
  // neither among failed tests nor among suites that could not run. One that could not run
  // reports no tests (jest's --json leaves out testExecError), and is counted among the latter.
  const failedInHooks = results.testResults.filter(
    (suite) =>
      suite.status === 'failed' &&
      !suite.testExecError &&
      (suite.assertionResults ?? []).length > 0 &&
      !suite.assertionResults.some(isFailed),
  ).length;
  failed += results.numFailedTests + results.numRuntimeErrorTestSuites + failedInHooks;
  failures.push(...failuresOf(run, results));
  if (results.numPendingTests > 0) skipped.push(`${run}: ${results.numPendingTests}`);
}
if (failures.length > 0) console.log(['failing:', ...failures].join('\n'));
if (skipped.length > 0) console.log(`skipped, not counted: ${skipped.join(', ')}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
