// The harness on a busy machine: a suite whose environment does not start prints its cause, fails
// alone (each of its tests, with the cause) and lets the other suites of the process run.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { ROOT } from './env/base.ts';
import { RUNTIMES } from './env/extension.ts';
import { realSuite } from './env/suite.ts';

const test = realSuite('test harness');

test('an environment that does not start: cause printed, its tests failed with it, teardown errors caught, the next suite runs', () => {
  const run = spawnSync(RUNTIMES.node![0]!, [join(ROOT, 'test', 'fixtures', 'harness', 'failing-setup.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const out = `${run.stdout}\n${run.stderr}`;
  assert.match(out, /\[broken environment\] environment did not start:\nError: kube-apiserver \/readyz did not answer within 90 s \(canary-cause-1234\)/, out);
  assert.match(out, /\[broken environment\] teardown failed:\nTypeError/, out);
  assert.is(out.match(/the suite's environment did not start: kube-apiserver \/readyz did not answer within 90 s \(canary-cause-1234\)/g)?.length, 2, 'both tests fail with the cause');
  assert.match(out, /healthy neighbour.*\(1 \/ 1\)/, 'the next suite ran');
  assert.match(out, /Total:\s+3\s+Passed:\s+1/, out);
  assert.not.match(out, /Exiting early/);
  assert.is.not(run.status, 0, 'the process fails');
});

test.run();
