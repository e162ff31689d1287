// The day-2 convergence queue and the workload client cache: pure logic, no API server needed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { converger } from '../../src/addon/converge.ts';
import { workloadClientCache } from '../../src/kube/workload-clients.ts';
import type { SecretClient } from '../../src/kube/client.ts';
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
    log, intervalMs: 1000, retryMs: 100, concurrency: 2, now: () => now,
    run: async (ns, name) => {
      runs.push(`${ns}/${name}`);
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return results[`${ns}/${name}`] ?? success();
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
  const q = converger({ log, concurrency: 1, run: async (_, name) => { seen.push(name); if (name === 'boom') throw new Error('bug'); return success(); } });
  q.request('ns', 'boom');
  q.request('ns', 'next');
  await q.idle();
  assert.equal(seen, ['boom', 'next']);
});

test('converger: a request whose state differs from the last one (an opt-in, a change, an opt-out) is not held back by the interval; the same state is', async () => {
  const now = 0;
  const runs: string[] = [];
  const q = converger({ log, intervalMs: 1000, now: () => now, run: async (ns, name) => (runs.push(`${ns}/${name}`), success()) });
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

test('workload clients: reused while the kubeconfig Secret resourceVersion stays, rebuilt when it changes, a failed build not cached', async () => {
  const built: string[] = [];
  const cache = workloadClientCache<string>({
    max: 2,
    build: async (kubeconfig) => {
      built.push(kubeconfig);
      if (kubeconfig === 'bad') throw new Error('cannot parse');
      return { kubeconfig } as unknown as SecretClient;
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
