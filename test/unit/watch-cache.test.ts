// The watch cache's bookkeeping and the cached client's routing. The API server here is a scripted
// stand-in, named as such: it exists to produce what a real one produces rarely and not on demand (410
// Gone after compaction, a watch that ends mid-stream, a change made while no watch runs). The same
// code against a real kube-apiserver: test/integration/watches.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { labelsMatch, objectCache, type CacheEvent } from '../../src/kube/cache.ts';
import { cachedClient } from '../../src/kube/cached-client.ts';
import { KubeError, withEnsure, type BaseClient, type KubeClient } from '../../src/kube/client.ts';

const test = suite('watch cache');
type Obj = Record<string, unknown>;
const secret = (name: string, rv: number, data: Record<string, string> = {}, labels: Record<string, string> = {}): Obj =>
  ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'ns', resourceVersion: String(rv), labels, managedFields: [{ manager: 'x' }] }, data });
const tick = () => new Promise((r) => setTimeout(r, 5));

/** A scripted list+watch endpoint: `objects` is what a list returns; `send` puts an event on the open watch; `fail` ends it with an error. */
function scripted() {
  let objects: Obj[] = [];
  let rv = 10;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const calls: string[] = [];
  let nextWatch: 'ok' | 'gone' = 'ok';
  const client: Pick<KubeClient, 'listPage' | 'watch'> = {
    async listPage() {
      calls.push('list');
      return { items: structuredClone(objects), resourceVersion: String(rv) };
    },
    async watch(_ref, _sel, from) {
      calls.push(`watch@${from}`);
      if (nextWatch === 'gone') {
        nextWatch = 'ok';
        throw new KubeError('watch: too old resource version', 410);
      }
      return new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    },
  };
  return {
    client, calls,
    set: (list: Obj[], version: number) => ((objects = list), (rv = version)),
    send: (type: string, object: Obj) => controller!.enqueue(new TextEncoder().encode(`${JSON.stringify({ type, object })}\n`)),
    /** The server ends the watch (its timeout); the next one is refused with 410 when `gone`. */
    end: (then: 'ok' | 'gone' = 'ok') => ((nextWatch = then), controller!.close()),
  };
}

test('lists, then holds every watch event; managedFields are not held; copies are handed out', async () => {
  const api = scripted();
  api.set([secret('a', 5, { k: 'dg==' })], 10);
  const cache = objectCache(api.client, { ref: { apiVersion: 'v1', kind: 'Secret' }, selectors: {} }, { retryMs: 1 });
  await cache.whenSynced();
  await tick();
  const events: CacheEvent[] = [];
  cache.onChange((e) => events.push(e));
  assert.equal((cache.get('ns', 'a')!.metadata as Obj).managedFields, undefined);
  (cache.get('ns', 'a')!.metadata as Obj).name = 'changed';
  assert.is((cache.get('ns', 'a')!.metadata as Obj).name, 'a', 'a caller changing its copy changes nothing held');
  api.send('ADDED', secret('b', 11));
  api.send('MODIFIED', secret('a', 12, { k: 'dw==' }));
  api.send('DELETED', secret('b', 13));
  await tick();
  assert.equal(events.map((e) => `${e.type} ${e.name}`), ['ADDED b', 'MODIFIED a', 'DELETED b']);
  assert.equal(cache.get('ns', 'a')!.data, { k: 'dw==' });
  assert.is(cache.get('ns', 'b'), undefined);
  assert.equal(api.calls, ['list', 'watch@10']);
  cache.stop();
});

test('a watch the server ends resumes from the last version; 410 Gone lists again and tells what changed while no watch ran', async () => {
  const api = scripted();
  api.set([secret('a', 5), secret('b', 6)], 10);
  const cache = objectCache(api.client, { ref: { apiVersion: 'v1', kind: 'Secret' }, selectors: {} }, { retryMs: 1 });
  await cache.whenSynced();
  await tick();
  api.send('MODIFIED', secret('a', 20));
  await tick();
  api.end();
  await tick();
  assert.equal(api.calls, ['list', 'watch@10', 'watch@20'], 'resumed where it stopped, no list');
  const events: CacheEvent[] = [];
  cache.onChange((e) => events.push(e));
  // While no watch runs: b deleted, c created, a unchanged; the history is compacted (410).
  api.set([secret('a', 20), secret('c', 30)], 31);
  api.end('gone');
  await tick();
  await tick();
  assert.equal(api.calls.slice(3), ['watch@20', 'list', 'watch@31'], 'refused with 410: a list, then a watch from its version');
  assert.equal(events.map((e) => `${e.type} ${e.name}`).sort(), ['ADDED c', 'DELETED b'], 'an unchanged object is not told again');
  cache.stop();
});

test('keep decides what is held; a selector of equality and existence terms matches labels', async () => {
  const api = scripted();
  api.set([secret('x-kubeconfig', 1), secret('x-ca', 2)], 3);
  const cache = objectCache(api.client, { ref: { apiVersion: 'v1', kind: 'Secret' }, selectors: {}, keep: (o) => (String((o.metadata as Obj).name).endsWith('-kubeconfig') ? o : undefined) }, { retryMs: 1 });
  await cache.whenSynced();
  assert.equal(cache.list().map((o) => (o.metadata as Obj).name), ['x-kubeconfig']);
  cache.stop();
  assert.ok(labelsMatch({ a: '1', b: '' }, 'a=1,b'));
  assert.ok(labelsMatch({ a: '1' }, 'a==1,!c,a!=2'));
  assert.not.ok(labelsMatch({ a: '1' }, 'a=2'));
  assert.not.ok(labelsMatch({}, 'a'));
  assert.ok(labelsMatch(undefined, ''));
});

test('cached client: covered reads from the cache (a miss is absence only where authoritative); after a write, from the API server until the watch brings it', async () => {
  const api = scripted();
  api.set([secret('c1-registry-addon-ca', 5, { 'ca.crt': 'UEVN' })], 10);
  const cache = objectCache(api.client, { ref: { apiVersion: 'v1', kind: 'Secret' }, selectors: {} }, { retryMs: 1 });
  await cache.whenSynced();
  await tick();
  const direct: string[] = [];
  const base: BaseClient = {
    ...api.client,
    readSecret: async (ns, name) => (direct.push(`get ${name}`), { data: { from: 'api' }, resourceVersion: '99' }),
    getSecret: async () => undefined,
    getObject: async (ref) => (direct.push(`get ${ref.name}`), undefined),
    listMetadata: async () => [],
    listObjects: async () => [],
    deleteObject: async () => 'deleted',
    createSecret: async (s) => (direct.push(`create ${s.name}`), 'created'),
    applySecret: async (s) => void direct.push(`apply ${s.name}`),
    applyObject: async () => undefined,
    podLog: async () => undefined,
  };
  const client = cachedClient(withEnsure(base), [
    { cache, authoritative: true, covers: (ref) => ref.name.endsWith('-registry-addon-ca') },
    { cache, authoritative: false, covers: (ref) => ref.name.endsWith('-kubeconfig') },
  ]);
  assert.equal(await client.getSecret('ns', 'c1-registry-addon-ca'), { 'ca.crt': 'PEM' });
  assert.is(await client.getSecret('ns', 'c2-registry-addon-ca'), undefined, 'authoritative miss: absent, no request');
  assert.equal(await client.getSecret('ns', 'c1-kubeconfig'), { from: 'api' }, 'a miss where not authoritative is read from the API server');
  assert.equal(await client.getSecret('ns', 'other'), { from: 'api' }, 'not covered: the API server');
  assert.is(await client.ensureSecret({ name: 'c1-registry-addon-ca', namespace: 'ns', data: { 'ca.crt': 'PEM' } }), false, 'steady state: no write');
  assert.equal(direct, ['get c1-kubeconfig', 'get other']);
  assert.is(await client.ensureSecret({ name: 'c1-registry-addon-ca', namespace: 'ns', data: { 'ca.crt': 'NEW' } }), true);
  assert.equal(await client.getSecret('ns', 'c1-registry-addon-ca'), { from: 'api' }, 'just written: read from the API server');
  api.send('MODIFIED', secret('c1-registry-addon-ca', 11, { 'ca.crt': 'TkVX' }));
  await tick();
  assert.equal(await client.getSecret('ns', 'c1-registry-addon-ca'), { 'ca.crt': 'NEW' }, 'the watch brought it: from the cache again');
  assert.equal(client.reads, { cached: 5, direct: 3 });
  // The watch event may come before the write's answer: then the cache is current at once.
  const eventFirst = cachedClient(withEnsure({ ...base, applySecret: async () => { api.send('MODIFIED', secret('c1-registry-addon-ca', 12, { 'ca.crt': 'TzI=' })); await tick(); } }), [
    { cache, authoritative: true, covers: (ref) => ref.name.endsWith('-registry-addon-ca') },
  ]);
  await eventFirst.applySecret({ name: 'c1-registry-addon-ca', namespace: 'ns', data: { 'ca.crt': 'O2' } });
  assert.equal(await eventFirst.getSecret('ns', 'c1-registry-addon-ca'), { 'ca.crt': 'O2' }, 'the event came during the write: from the cache');
  assert.equal(eventFirst.reads, { cached: 1, direct: 0 });
  // The answer names the version written: an earlier write's late event does not make the cache current, that version's event does.
  const versioned = cachedClient(withEnsure({ ...base, applySecret: async () => '20' }), [
    { cache, authoritative: true, covers: (ref) => ref.name.endsWith('-registry-addon-ca') },
  ]);
  await versioned.applySecret({ name: 'c1-registry-addon-ca', namespace: 'ns', data: { 'ca.crt': 'V20' } });
  api.send('MODIFIED', secret('c1-registry-addon-ca', 19, { 'ca.crt': 'VjE5' }));
  await tick();
  assert.equal(await versioned.getSecret('ns', 'c1-registry-addon-ca'), { from: 'api' }, 'version 19 came, 20 was written: still from the API server');
  api.send('MODIFIED', secret('c1-registry-addon-ca', 20, { 'ca.crt': 'VjIw' }));
  await tick();
  assert.equal(await versioned.getSecret('ns', 'c1-registry-addon-ca'), { 'ca.crt': 'V20' }, 'version 20 came: from the cache');
  // ...and when that version's event came while the write was answered, the cache is current at once.
  const answeredLate = cachedClient(withEnsure({ ...base, applySecret: async () => { api.send('MODIFIED', secret('c1-registry-addon-ca', 21, { 'ca.crt': 'VjIx' })); await tick(); return '21'; } }), [
    { cache, authoritative: true, covers: (ref) => ref.name.endsWith('-registry-addon-ca') },
  ]);
  await answeredLate.applySecret({ name: 'c1-registry-addon-ca', namespace: 'ns', data: { 'ca.crt': 'V21' } });
  assert.equal(await answeredLate.getSecret('ns', 'c1-registry-addon-ca'), { 'ca.crt': 'V21' });
  cache.stop();
});

test.run();
