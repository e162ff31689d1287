// The day-2 convergence queue and the workload client cache: pure logic, no API server needed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { converger, type ConvergeOutcome } from '../../src/addon/converge.ts';
import { confirmer } from '../../src/addon/confirm.ts';
import { leaseMembership, liveHolder, liveMembers, MAX_LEASE_SECONDS, MAX_MEMBERS, memberLeaseName, ownerOf, staleLease } from '../../src/addon/membership.ts';
import { workloadClientCache } from '../../src/kube/workload-clients.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { createLogger } from '../../src/observe/log.ts';
import { failure, success, type HookResult } from '../../src/runtime-sdk/types.ts';

const test = suite('day-2 queue and workload clients');
const log = createLogger({ level: 'error', format: 'json', write: () => {} });

test('converger: one run per Cluster at a time, none again within the interval, a retry sooner after a Failure, bounded concurrency', async () => {
  let now = 0;
  const runs: string[] = [];
  let running = 0;
  let peak = 0;
  const results: Record<string, HookResult> = { 'ns/bad': failure('no') };
  const q = converger({
    log, intervalMs: 1000, retryMs: 100, concurrency: 2, now: () => now, timers: manualTimers().timers,
    run: async (ns, name) => {
      runs.push(`${ns}/${name}`);
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return { result: results[`${ns}/${name}`] ?? success(), watch: false };
    },
  });
  for (let i = 0; i < 3; i++) for (const c of ['a', 'b', 'c', 'bad']) q.request('ns', c);
  await q.idle();
  assert.equal(runs.sort(), ['ns/a', 'ns/b', 'ns/bad', 'ns/c'], 'requests while queued or running do not add runs');
  assert.is(peak, 2, 'at most `concurrency` at once');
  now = 500;
  for (const c of ['a', 'bad']) q.request('ns', c);
  await q.idle();
  assert.equal(runs.slice(4), ['ns/bad'], 'after a Failure: again after retryMs; after a Success: not within intervalMs');
  now = 1001;
  q.request('ns', 'a');
  await q.idle();
  assert.equal(runs.slice(5), ['ns/a']);
  q.forget('ns', 'a');
  q.request('ns', 'a');
  await q.idle();
  assert.equal(runs.slice(6), ['ns/a'], 'forget clears the interval (a deleted Cluster, re-created)');
});

test('converger: a run that throws is logged and retried later, the queue keeps going', async () => {
  const seen: string[] = [];
  const q = converger({ log, concurrency: 1, timers: manualTimers().timers, run: async (_, name) => { seen.push(name); if (name === 'boom') throw new Error('bug'); return { result: success(), watch: false }; } });
  q.request('ns', 'boom');
  q.request('ns', 'next');
  await q.idle();
  assert.equal(seen, ['boom', 'next']);
});

test('converger: a request whose state differs from the last one (an opt-in, a change, an opt-out) is not held back by the interval; the same state is', async () => {
  const now = 0;
  const runs: string[] = [];
  const q = converger({ log, intervalMs: 1000, now: () => now, timers: manualTimers().timers, run: async (ns, name) => (runs.push(`${ns}/${name}`), { result: success(), watch: false }) });
  q.request('ns', 'c', 'false');
  await q.idle();
  q.request('ns', 'c', 'false');
  await q.idle();
  assert.equal(runs, ['ns/c'], 'same state within the interval: no second run');
  q.request('ns', 'c', '{}');
  await q.idle();
  assert.equal(runs, ['ns/c', 'ns/c'], 'opted in: at once');
  q.request('ns', 'c', '{}');
  q.request('ns', 'c', 'false');
  await q.idle();
  assert.equal(runs, ['ns/c', 'ns/c', 'ns/c'], 'opted out: at once');
});

test('converger: alternating forged claims (a body saying opted in, then out, then in) earn one early run, then wait for retryMs; a true change is still acted on at once', async () => {
  let now = 0;
  let stored = '{}'; // what the API server says of the Cluster's registry
  const runs: number[] = [];
  const q = converger({ log, intervalMs: 600_000, retryMs: 60_000, now: () => now, timers: manualTimers().timers, run: async () => (runs.push(now), { result: success(), watch: false, state: stored }) });
  q.request('ns', 'c', '{}');
  await q.idle();
  for (let i = 0; i < 20; i++) {
    now += 100;
    q.request('ns', 'c', i % 2 ? '{}' : 'false');
    await q.idle();
  }
  assert.equal(runs, [0, 100], 'the first false claim ran once; the rest waited');
  now += 60_000;
  stored = 'false';
  q.request('ns', 'c', 'false');
  await q.idle();
  assert.equal(runs.length, 3, 'after retryMs a claimed change runs again (and it is true this time)');
  now += 100;
  stored = '{"replicas":3}';
  q.request('ns', 'c', '{"replicas":3}');
  await q.idle();
  assert.equal(runs.length, 4, 'a claim the API server bore out leaves the next change free to run at once');
});

/** Timers the test fires by hand: `due()` lists what is pending with its delay. */
function manualTimers() {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let next = 0;
  return {
    timers: { set: (fn: () => void, ms: number) => (pending.set(++next, { fn, ms }), next), clear: (h: unknown) => void pending.delete(h as number) },
    due: () => [...pending.values()].map((p) => p.ms),
    fire() {
      const all = [...pending.values()];
      pending.clear();
      for (const p of all) p.fn();
    },
  };
}

test('converger: a watched Cluster is converged again every interval without being asked; Failures back off from retryMs to the interval; forget and stop cancel', async () => {
  const clock = manualTimers();
  const outcomes: Record<string, ConvergeOutcome[]> = {
    'ns/ok': [{ result: success(), watch: true }],
    'ns/flaky': [1, 2, 3, 4].map(() => ({ result: failure('CAAPH missing'), watch: true })).concat([{ result: success(), watch: true }]),
    'ns/gone': [{ result: success(), watch: false }],
  };
  const runs: string[] = [];
  const q = converger({
    log, intervalMs: 1000, retryMs: 100, timers: clock.timers, now: () => 0,
    run: async (ns, name) => {
      const key = `${ns}/${name}`;
      runs.push(key);
      const list = outcomes[key]!;
      return list.length > 1 ? list.shift()! : list[0]!;
    },
  });
  for (const c of ['ok', 'flaky', 'gone']) q.request('ns', c);
  await q.idle();
  assert.equal(clock.due().sort((a, b) => a - b), [100, 1000], 'ok again after the interval, flaky after retryMs, gone not at all');
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    clock.fire();
    await q.idle();
    delays.push(Math.min(...clock.due()));
  }
  assert.equal(delays, [200, 400, 800, 1000], 'each Failure doubles the wait; a success goes back to the interval');
  assert.is(runs.filter((r) => r === 'ns/gone').length, 1, 'a Cluster not watched is not run again');
  assert.ok(runs.filter((r) => r === 'ns/ok').length >= 4, 'the watched Cluster keeps being converged (renewal near expiry needs no upgrade)');
  q.forget('ns', 'ok');
  assert.equal(clock.due(), [1000], 'forget cancels its timer');
  q.stop();
  assert.equal(clock.due(), [], 'stop cancels them all');
});

test('converger: a nudge (a watch event) runs the Cluster soon whatever the interval, at most once per gap, once more when it came during a pass, and only on its owner', async () => {
  const clock = manualTimers();
  let now = 0;
  let release: (() => void) | undefined;
  const runs: string[] = [];
  const q = converger({
    log, intervalMs: 600_000, nudgeMs: 200, nudgeGapMs: 1_000, timers: clock.timers, now: () => now, owns: (key) => key !== 'ns/theirs',
    run: async (_, name) => {
      runs.push(name);
      if (name === 'slow') await new Promise<void>((r) => (release = r));
      return { result: success(), watch: true };
    },
  });
  q.request('ns', 'a');
  await q.idle();
  assert.equal(clock.due(), [600_000], 'converged: next after the interval');
  q.nudge('ns', 'a');
  assert.equal(clock.due(), [200], 'nudged: within nudgeMs, not after the interval');
  clock.fire();
  await q.idle();
  q.nudge('ns', 'a');
  assert.equal(clock.due(), [1_200], 'a second nudge at once waits for the gap after the first (a pass\'s own writes come back as events)');
  now = 5_000;
  q.nudge('ns', 'theirs');
  assert.equal(clock.due(), [1_200], 'a Cluster another replica owns is left to it');
  q.request('ns', 'slow');
  await new Promise((r) => setTimeout(r, 1));
  q.nudge('ns', 'slow');
  release!();
  await q.idle();
  assert.ok(clock.due().includes(200), 'nudged during its pass: once more soon after it');
  assert.equal(runs, ['a', 'a', 'slow']);
  q.stop();
});

test('converger: Clusters whose last run failed (a hung API server) share one slot of four; the others keep theirs', async () => {
  let now = 0;
  const failing = new Set(['f1', 'f2', 'f3', 'f4']);
  let active = 0;
  let activeFailing = 0;
  let peakFailing = 0;
  const order: string[] = [];
  const q = converger({
    log, intervalMs: 1000, retryMs: 10, concurrency: 4, now: () => now, timers: manualTimers().timers,
    run: async (_, name) => {
      order.push(name);
      active++;
      if (failing.has(name)) peakFailing = Math.max(peakFailing, ++activeFailing);
      await new Promise((r) => setTimeout(r, failing.has(name) ? 20 : 2));
      active--;
      if (failing.has(name)) activeFailing--;
      return { result: failing.has(name) ? failure('timed out') : success(), watch: false };
    },
  });
  for (const n of failing) q.request('ns', n);
  await q.idle();
  assert.is(peakFailing, 4, 'the first time nothing is known: all four slots');
  peakFailing = 0;
  now = 100; // past the retry delay: the failing ones are asked for again, with eight healthy ones
  for (const n of [...failing, 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']) q.request('ns', n);
  await q.idle();
  assert.is(peakFailing, 1, 'at most one slot for Clusters that failed last time');
  const second = order.slice(4);
  assert.ok(second.indexOf('h8') < second.indexOf('f4'), `healthy Clusters are not queued behind the failing ones (${second.join(' ')})`);
});

test('converger with owners: watched Clusters run only on their owner; hook-asked runs and retries run where asked; rebalance picks up what a replica now owns', async () => {
  const clock = manualTimers();
  let members = ['a', 'b'];
  const runs: string[] = [];
  const q = converger({
    log, intervalMs: 1000, retryMs: 100, timers: clock.timers, now: () => 0,
    owns: (key) => ownerOf(members, key) === 'a',
    run: async (ns, name) => (runs.push(`${ns}/${name}`), { result: success(), watch: true }),
  });
  const keys = Array.from({ length: 40 }, (_, i) => `ns/c${i}`);
  const ours = keys.filter((k) => ownerOf(members, k) === 'a');
  assert.ok(ours.length > 5 && ours.length < 35, `both replicas own a share (${ours.length} of 40)`);
  for (const k of keys) q.watch('ns', k.slice(3));
  clock.fire();
  await q.idle();
  assert.equal(runs.sort(), [...ours].sort(), 'the periodic passes: only the owned Clusters');
  const theirs = keys.find((k) => !ours.includes(k))!;
  q.request('ns', theirs.slice(3));
  await q.idle();
  assert.is(runs.at(-1), theirs, 'a hook or GeneratePatches is acted on where it arrived');
  runs.length = 0;
  members = ['a'];
  q.rebalance();
  await q.idle();
  assert.equal(runs.sort(), keys.filter((k) => !ours.includes(k) && k !== theirs).sort(), 'b is gone: a passes at once over what b owned (and had not just run)');
  q.stop();
});

test('rendezvous owners: one owner per key, a fair spread, and only the leaving member\'s keys move; Lease liveness', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `team-${i % 7}/cluster-${i}`);
  const three = ['replica-a1', 'replica-b2', 'replica-c3'];
  const owners = keys.map((k) => ownerOf(three, k));
  for (const m of three) {
    const share = owners.filter((o) => o === m).length / keys.length;
    assert.ok(share > 0.28 && share < 0.39, `${m} owns ${(share * 100).toFixed(1)}%`);
  }
  const two = three.slice(0, 2);
  const moved = keys.filter((k, i) => owners[i] !== 'replica-c3' && ownerOf(two, k) !== owners[i]).length;
  assert.is(moved, 0, 'keys of the remaining members stay where they are');
  assert.is(ownerOf([], 'x'), undefined);
  const lease = (holder: string, renewTime: string, seconds = 30) => ({ spec: { holderIdentity: holder, renewTime, leaseDurationSeconds: seconds } });
  const now = Date.parse('2026-12-02T12:00:00Z');
  assert.is(liveHolder(lease('a', '2026-12-02T11:59:45.000000Z'), now, 0), 'a');
  assert.is(liveHolder(lease('a', '2026-12-02T11:59:25.000000Z'), now, 0), undefined, 'expired');
  assert.is(liveHolder(lease('a', '2026-12-02T11:59:25.000000Z'), now, 10_000), 'a', 'within the grace for clock skew');
  assert.is(liveHolder({ spec: { holderIdentity: 'a' } }, now, 0), undefined, 'no renewTime: not counted');
  assert.is(liveHolder({}, now, 0), undefined);
});

test('member Leases: each replica renews its own, sees the others, deletes one left by a replica killed long ago, and its own on stop', async () => {
  // An in-memory stand-in for the Lease API (the real one runs in replicas.test.ts).
  const leases = new Map<string, Record<string, any>>();
  const client = {
    applyObject: async (o: any) => void leases.set(o.metadata.name, structuredClone(o)),
    listObjects: async () => [...leases.values()],
    deleteObject: async (ref: any) => (leases.delete(ref.name) ? 'deleted' : 'absent'),
  } as unknown as KubeClient;
  let now = Date.parse('2026-12-02T12:00:00Z');
  leases.set('killed', { metadata: { name: 'killed' }, spec: { holderIdentity: 'old-pod', renewTime: '2026-12-02T11:00:00.000000Z', leaseDurationSeconds: 30 } });
  let changes = 0;
  const member = (identity: string) => leaseMembership({ client, namespace: 'p', identity, log, onChange: () => changes++, now: () => now, timers: manualTimers().timers });
  const a = member('pod-a-1');
  await a.start();
  assert.equal(a.members(), ['pod-a-1']);
  assert.not.ok(leases.has('killed'), 'a Lease not renewed for an hour is removed');
  assert.match(leases.get('capi-registry-addon-member-pod-a-1')!.spec.renewTime, /^2026-12-02T12:00:00\.000000Z$/, 'MicroTime: six fractional digits');
  const b = member('pod-b-2');
  await b.start();
  assert.equal(b.members(), ['pod-a-1', 'pod-b-2']);
  assert.is(changes, 1, 'b saw a: its view changed once');
  await b.stop();
  assert.not.ok(leases.has('capi-registry-addon-member-pod-b-2'), 'stop deletes its own Lease');
  await a.stop();
  assert.equal([...leases.keys()], []);
});

test('member Leases are checked, not believed: a future renewTime, a name that is not its holder\'s, an endless duration and a flood of members', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  const at = (ms: number) => new Date(now + ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  const lease = (holder: string, renewMs: number, seconds = 30, name = memberLeaseName(holder)) => ({ metadata: { name }, spec: { holderIdentity: holder, renewTime: at(renewMs), leaseDurationSeconds: seconds } });
  const grace = 10_000;
  assert.is(liveHolder(lease('pod-a-1', -5_000), now, grace), 'pod-a-1');
  assert.is(liveHolder(lease('ghost-1', 365 * 86_400_000), now, grace), undefined, 'renewed a year from now: not counted');
  assert.ok(staleLease(lease('ghost-1', 365 * 86_400_000), now, grace), '... and deleted');
  assert.is(liveHolder(lease('pod-a-1', 5_000), now, grace), 'pod-a-1', 'a little ahead (clock skew) still counts');
  assert.is(liveHolder(lease('pod-a-1', -1_000, 30, 'capi-registry-addon-member-pod-b-2'), now, grace), undefined, 'a name that is not its holder\'s');
  assert.is(liveHolder(lease('pod-a-1', -10 * 60_000, 1e9), now, grace), undefined, 'a billion seconds is believed for MAX_LEASE_SECONDS only');
  assert.is(liveHolder(lease('pod-a-1', -(MAX_LEASE_SECONDS - 20) * 1000, 1e9), now, grace), 'pod-a-1');
  assert.is(liveHolder(lease('has space', -1_000), now, grace), undefined, 'a holder no pod name makes');
  assert.ok(staleLease({ metadata: { name: 'x' }, spec: {} }, now, grace));
  assert.not.ok(staleLease(lease('pod-a-1', -60_000), now, grace), 'expired a minute ago: kept (it may come back)');
  const flood = Array.from({ length: 200 }, (_, i) => lease(`planted-${i}`, -i * 10));
  const members = liveMembers([...flood, lease('pod-real-1', -1_500)], 'self-1', now, grace);
  assert.is(members.length, MAX_MEMBERS, 'bounded');
  assert.ok(members.includes('self-1'), 'always itself');
  assert.ok(members.includes('planted-0') && !members.includes('planted-199'), 'the newest renewals win');
});

test('confirmations: bodies naming one Cluster share one read; at most `reads` names are read at once and `waiting` wait; past that an answer at once (BeforeClusterDelete: wait and ask again)', async () => {
  const gets: string[] = [];
  const pending: (() => void)[] = [];
  const management = { getObject: (ref: any) => (gets.push(ref.name), new Promise((resolve) => pending.push(() => resolve({ metadata: { name: ref.name, namespace: ref.namespace, uid: `uid-${ref.name}` }, spec: {} })))) };
  const deps = { management, clusterApiVersion: 'cluster.x-k8s.io/v1beta2' } as any;
  const c = confirmer(log, { reads: 2, waiting: 2 });
  const claim = (name: string, uid = `uid-${name}`) => ({ namespace: 'ns', name, uid, variables: [], raw: {} }) as any;
  const same = Array.from({ length: 50 }, (_, i) => c.confirm('BeforeClusterCreate', claim('real', i ? `forged-${i}` : 'uid-real'), deps));
  const tick = () => new Promise((r) => setTimeout(r, 0));
  await tick();
  assert.equal(gets, ['real'], 'fifty bodies for one name: one read');
  const others = ['a', 'b', 'c', 'd', 'e'].map((n) => c.confirm('BeforeClusterCreate', claim(n), deps));
  const deletion = c.confirm('BeforeClusterDelete', claim('f'), deps);
  await tick();
  assert.equal(c.load(), { reading: 2, waiting: 2 });
  const busy = await Promise.race([others[3]!, new Promise((r) => setTimeout(() => r('still waiting'), 50))]) as any;
  assert.is(busy.status, 'Failure');
  assert.match(busy.message, /checking 4 hook requests against the API server already; not checked now \(CAPI retries\)/);
  const deleted = (await deletion) as any;
  assert.equal([deleted.status, deleted.retryAfterSeconds], ['Success', 5], 'a deletion waits and is asked again, never waved through');
  while (pending.length) pending.shift()!();
  await new Promise((r) => setTimeout(r, 10));
  while (pending.length) pending.shift()!();
  const results = await Promise.all(same);
  assert.ok(!('status' in (results[0] as object)), 'the real body: its Cluster');
  assert.ok(results.slice(1).every((r: any) => r.status === 'Failure' && /metadata\.uid "forged-\d+" is not the Cluster's \(uid-real\)/.test(r.message)));
  assert.ok(!('status' in ((await others[0]!) as object)) && !('status' in ((await others[2]!) as object)), 'the waiting ones were read in turn');
  assert.equal(c.load(), { reading: 0, waiting: 0 });
});

test('workload clients: reused while the kubeconfig Secret resourceVersion stays, rebuilt when it changes, a failed build not cached', async () => {
  const built: string[] = [];
  const cache = workloadClientCache<string>({
    max: 2,
    build: async (kubeconfig) => {
      built.push(kubeconfig);
      if (kubeconfig === 'bad') throw new Error('cannot parse');
      return { kubeconfig } as unknown as KubeClient;
    },
  });
  const key = (name: string, resourceVersion: string) => ({ namespace: 'ns', name, resourceVersion });
  const a1 = await cache.get(key('a', '1'), 'kc-a1');
  assert.is(await cache.get(key('a', '1'), 'ignored'), a1);
  assert.is.not(await cache.get(key('a', '2'), 'kc-a2'), a1);
  await cache.get(key('b', '1'), 'bad').catch(() => undefined);
  await cache.get(key('b', '1'), 'kc-b1');
  assert.equal(built, ['kc-a1', 'kc-a2', 'bad', 'kc-b1']);
  await cache.get(key('c', '1'), 'kc-c1'); // evicts the least recently used (a)
  await cache.get(key('a', '2'), 'kc-a2-again');
  assert.is(built.at(-1), 'kc-a2-again');
  cache.forget('ns', 'c');
  await cache.get(key('c', '1'), 'kc-c1-again');
  assert.is(built.at(-1), 'kc-c1-again');
});

test.run();
