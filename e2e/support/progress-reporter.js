// A jest reporter for npm test's end-to-end runs (scripts/e2e-run.js): one line on stdout when a
// test starts and one when it ends, with its duration, prefixed by the run (E2E_RUN), so two runs
// side by side show what each is doing while jest's own output waits in their log files.
const { basename } = require('node:path');

const RUN = process.env.E2E_RUN ?? 'e2e';
const MARKS = { passed: 'ok  ', failed: 'FAIL', skipped: 'skip', pending: 'skip', todo: 'todo' };

const clock = () => new Date().toISOString().slice(11, 19);
const say = (line) => process.stdout.write(`${clock()} [${RUN}] ${line}\n`);
const nameOf = (test, fullName) => `${basename(test.path)} › ${fullName}`;

class ProgressReporter {
  onTestFileStart(test) {
    say(`start ${basename(test.path)}`);
  }

  onTestCaseStart(test, testCase) {
    say(`  >   ${nameOf(test, testCase.fullName)}`);
  }

  onTestCaseResult(test, testCase) {
    const seconds = ((testCase.duration ?? 0) / 1000).toFixed(1);
    say(`  ${MARKS[testCase.status] ?? testCase.status} ${nameOf(test, testCase.fullName)} (${seconds} s)`);
  }

  onTestFileResult(test, result) {
    const seconds = ((result.perfStats.end - result.perfStats.start) / 1000).toFixed(0);
    const failure = result.testExecError ? `, could not run: ${result.testExecError.message.split('\n')[0]}` : '';
    say(
      `end   ${basename(test.path)}: ${result.numPassingTests} passed, ${result.numFailingTests} failed (${seconds} s)${failure}`,
    );
  }
}

module.exports = ProgressReporter;
