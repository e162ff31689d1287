// The harness on a busy machine: a suite whose environment does not start prints its cause, fails
// alone (each of its tests, with the cause), stops every process it had started and lets the other
// suites of the process run; the process then exits by itself. Ports never collide.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import net from 'node:net';
import * as assert from 'uvu/assert';
import { allocationBand, ephemeralRange } from '../../scripts/lib/ports.mjs';
import { freePort, ROOT, workDir } from './env/base.ts';
import { RUNTIMES } from './env/extension.ts';
import { realSuite } from './env/suite.ts';

const test = realSuite('test harness');

test('an environment that does not start: cause printed, its processes stopped, its tests failed with it, teardown errors caught, the next suite runs, the process exits', () => {
  // Bundled as the runner bundles every suite (Node's own type stripping does not take parameter properties).
  const bundle = join(workDir('harness'), 'failing-setup.mjs');
  const built = spawnSync(join(ROOT, 'node_modules', '.bin', 'esbuild'), [join(ROOT, 'test', 'fixtures', 'harness', 'failing-setup.ts'), '--bundle', '--platform=node', '--format=esm',
    `--outfile=${bundle}`, "--banner:js=import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);", '--log-level=warning'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(built.status, 0, built.stderr);
  const began = Date.now();
  const run = spawnSync(RUNTIMES.node![0]!, [bundle], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const out = `${run.stdout}\n${run.stderr}`;
  assert.is(run.signal, null, `the process exited by itself (not killed at the 120 s limit):\n${out}`);
  assert.match(out, /\[broken environment\] environment did not start:\nError: kube-apiserver exited with 1/, out);
  // The real kube-apiserver's own words about the flag, from its log, reached the cause.
  assert.match(out, /"command failed" err="service-cluster-ip-range\[0\] is not a valid cidr"/, out);
  // sleep, etcd and kube-apiserver: startKube stops its two itself; the suite stops what is left.
  assert.match(out, /\(stopped the 1 process\(es\) it had started\)/, out);
  assert.match(out, /\[broken environment\] teardown failed:\nTypeError/, out);
  assert.is(out.match(/the suite's environment did not start: .*kube-apiserver exited with 1/g)?.length, 2, 'both tests fail with the cause');
  assert.match(out, /healthy neighbour.*\(1 \/ 1\)/, 'the next suite ran, and no process of the broken environment was still running');
  assert.match(out, /Total:\s+3\s+Passed:\s+1/, out);
  assert.not.match(out, /Exiting early/);
  assert.is.not(run.status, 0, 'the process fails');
  console.log(`  (the failing fixture ran and exited in ${Date.now() - began} ms)`);
});

test('ports: outside the kernel\'s ephemeral band, never the same twice, free when handed out', async () => {
  const [low, high] = ephemeralRange();
  const [from, to] = allocationBand();
  assert.ok(to < low || from > high, `band ${from}-${to} is outside ${low}-${high}`);
  // The order that once collided: etcd client, etcd peer, API server, each port closed before the next call.
  const ports: number[] = [];
  for (let i = 0; i < 300; i++) ports.push(await freePort());
  assert.is(new Set(ports).size, ports.length, 'no port handed out twice');
  for (const p of ports) assert.ok(p >= from && p <= to && (p < low || p > high), `port ${p} in the band`);
  // A port something already listens on (on loopback only) is never handed out.
  const holder = net.createServer();
  const held: number = await new Promise((resolve) => holder.listen(0, '127.0.0.1', () => resolve((holder.address() as net.AddressInfo).port)));
  const bandHolders: net.Server[] = [];
  const next = ports.at(-1)! + 1;
  if (next <= to) {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(next, '127.0.0.1', () => resolve()));
    bandHolders.push(s);
    const got = await freePort();
    assert.is.not(got, next, 'the port held on 127.0.0.1 was skipped');
  }
  for (const s of [holder, ...bandHolders]) s.close();
  assert.ok(held >= low && held <= high, 'the kernel hands out ports from the ephemeral band (the band we stay out of)');
});

test.run();
