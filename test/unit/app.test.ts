// The Hono app in process (app.fetch with web-standard Requests): the same wire checks the integration
// suite makes over TLS, plus the wrapper's limits and deadline.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { createAddon } from '../../src/addon/hooks.ts';
import { KubeError } from '../../src/kube/client.ts';
import { createLogger } from '../../src/observe/log.ts';
import { HookMetrics } from '../../src/observe/metrics.ts';
import { createApp } from '../../src/server/app.ts';
import { success } from '../../src/runtime-sdk/types.ts';
import { HOOK_PREFIX, wireFixtures, wireProblems } from '../helpers.ts';

const test = suite('app');

const logLines: string[] = [];
const log = createLogger({ level: 'debug', format: 'json', write: (l) => logLines.push(l) });

// No management cluster here: the addon must say so for opted-in Clusters and never need one otherwise.
const addon = createAddon({ deps: () => Promise.reject(new KubeError('no management cluster connection (unit test)')), log });

function makeApp(overrides: Partial<typeof addon.handlers> = {}, maxBodyBytes = 1024 * 1024) {
  const metrics = new HookMetrics();
  const app = createApp({ target: { minor: 12, newerThanKnown: false }, handlers: { ...addon.handlers, ...overrides }, log, metrics, maxBodyBytes });
  return { app, metrics };
}

const post = (app: ReturnType<typeof makeApp>['app'], path: string, body: BodyInit, query = '?timeout=10s') =>
  app.fetch(new Request(`https://x${path}${query}`, { method: 'POST', body }));

test('every recorded CAPI request gets a wire-valid answer; not opted in means Success and no changes; opted in without a management cluster: a Failure that says so, except delete', async () => {
  const { app } = makeApp();
  for (const f of wireFixtures()) {
    const res = await post(app, f.path, f.body);
    const text = await res.text();
    assert.equal(wireProblems(f.hook, res.status, text), [], f.file);
    const body = JSON.parse(text);
    if (f.hook === 'Discovery' || f.hook === 'DiscoverVariables' || !f.optedIn) assert.is(body.status, 'Success', f.file);
    if (f.hook === 'GeneratePatches' && !f.optedIn) assert.equal(body.items, [], f.file);
    if (BLOCKING_SUCCESS(f) ) assert.is(body.retryAfterSeconds, 0, f.file);
    if (f.optedIn && ['BeforeClusterCreate', 'AfterControlPlaneInitialized', 'BeforeClusterUpgrade'].includes(f.hook)) {
      assert.is(body.status, 'Failure', f.file);
      assert.match(body.message, /^Cluster [a-z0-9-]+\/[a-z0-9-]+: no management cluster connection \(unit test\)$/, f.file);
    }
    if (f.optedIn && f.hook === 'BeforeClusterDelete') {
      assert.is(body.status, 'Success', `${f.file}: deletion is never held back`);
      assert.is(body.retryAfterSeconds, 0, f.file);
      assert.match(body.message, /no management cluster connection/, f.file);
    }
    if (f.optedIn && f.hook === 'GeneratePatches') {
      // Pure: answered from the request alone, with a patch for each kubeadm template.
      assert.is(body.status, 'Success', f.file);
      assert.ok(body.items.length >= 2, f.file);
    }
  }
});
const BLOCKING_SUCCESS = (f: { hook: string; optedIn: boolean }) => !f.optedIn && ['BeforeClusterCreate', 'BeforeClusterUpgrade', 'BeforeClusterDelete'].includes(f.hook);

test('discovery lists the six handlers; DiscoverVariables publishes clusterConfig.addons.registry', async () => {
  const { app } = makeApp();
  const disco = await (await post(app, `${HOOK_PREFIX}/discovery`, '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"DiscoveryRequest"}')).json();
  assert.equal(disco.handlers.map((h: { name: string }) => h.name), [
    'before-cluster-create', 'after-control-plane-initialized', 'before-cluster-upgrade', 'before-cluster-delete', 'generate-patches', 'discover-variables',
  ]);
  const vars = await (await post(app, `${HOOK_PREFIX}/discovervariables/discover-variables`, '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"DiscoverVariablesRequest"}')).json();
  assert.is(vars.variables[0].name, 'clusterConfig');
  assert.is(vars.variables[0].required, false);
  assert.ok(vars.variables[0].schema.openAPIV3Schema.properties.addons.properties.registry);
});

test('malformed bodies: Failure with a message that says what is wrong, always HTTP 200', async () => {
  const { app, metrics } = makeApp();
  const path = `${HOOK_PREFIX}/beforeclustercreate/before-cluster-create`;
  const cases: [BodyInit, RegExp][] = [
    ['', /not valid JSON/],
    ['{"apiVersion":', /not valid JSON/],
    ['null', /must be a JSON object/],
    ['[]', /must be a JSON object/],
    ['{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"BeforeClusterCreateRequest"}', /cluster is missing/],
    ['{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"GeneratePatchesRequest"}', /expected BeforeClusterCreateRequest/],
    [new Uint8Array([0xff, 0xfe, 0x00]), /not valid JSON/],
  ];
  for (const [body, message] of cases) {
    const res = await post(app, path, body);
    const text = await res.text();
    assert.equal(wireProblems('BeforeClusterCreate', res.status, text), []);
    assert.match(JSON.parse(text).message, message);
  }
  assert.is(metrics.failures.get({ hook: 'BeforeClusterCreate', reason: 'malformed' }), 3);
  assert.is(metrics.failures.get({ hook: 'BeforeClusterCreate', reason: 'invalid' }), 4);
});

test('bodies over the limit are refused without buffering, with or without Content-Length', async () => {
  const { app } = makeApp({}, 1000);
  const path = `${HOOK_PREFIX}/generatepatches/generate-patches`;
  const big = 'x'.repeat(5000);
  const withLength = await post(app, path, big);
  assert.match((await withLength.json()).message, /exceeds 1000 bytes: raise --max-body-bytes/);
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(big));
      c.close();
    },
  });
  const res = await app.fetch(new Request(`https://x${path}`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit));
  assert.is(res.status, 200);
  assert.match((await res.json()).message, /exceeds 1000 bytes/);
});

test('a body that opens more JSON objects and arrays than its size allows is refused before parsing; past the shared budget a request is refused, not reset', async () => {
  const { app, metrics } = makeApp({}, 1024);
  // 1024 bytes allow 64 containers: the envelope, items and 100 empty arrays (102, in 400 bytes) are refused.
  const dense = `{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"GeneratePatchesRequest","items":[${Array(100).fill('[]').join(',')}]}`;
  const r = await (await post(app, `${HOOK_PREFIX}/generatepatches/generate-patches`, dense)).json();
  assert.equal([r.status, r.message], ['Failure', 'request body opens 102 JSON objects and arrays, more than the 64 a 1024-byte request may: raise --max-body-bytes if this Cluster is really that large']);
  assert.is(metrics.failures.get({ hook: 'GeneratePatches', reason: 'too-complex' }), 1);
  // Three 900-byte bodies held at once against a 2 x 1024-byte budget: one is answered "busy" (a Failure, HTTP 200).
  const slow = () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(new TextEncoder().encode(`{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"GeneratePatchesRequest"${' '.repeat(800)}`));
        await gate;
        c.enqueue(new TextEncoder().encode(',"items":[]}'));
        c.close();
      },
    });
    return { release, res: app.fetch(new Request(`https://x${HOOK_PREFIX}/generatepatches/generate-patches?timeout=10s`, { method: 'POST', body, duplex: 'half' } as RequestInit)) };
  };
  const three = [slow(), slow(), slow()];
  await new Promise((r) => setTimeout(r, 20));
  for (const s of three) s.release();
  const answers = await Promise.all(three.map(async (s) => (await s.res).json()));
  assert.equal(answers.map((a) => a.status).sort(), ['Failure', 'Success', 'Success']);
  assert.match(answers.find((a) => a.status === 'Failure').message, /^the extension is reading other large requests \(more than 2048 bytes at once\); CAPI retries$/);
  assert.is(metrics.failures.get({ hook: 'GeneratePatches', reason: 'busy' }), 1);
});

test("CAPI's ?timeout= bounds the handler: a stuck handler yields a Failure before CAPI gives up", async () => {
  const { app } = makeApp({ BeforeClusterDelete: () => new Promise(() => {}) });
  const started = Date.now();
  const res = await post(app, `${HOOK_PREFIX}/beforeclusterdelete/before-cluster-delete`, '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"BeforeClusterDeleteRequest","cluster":{"metadata":{"name":"a","namespace":"b"}}}', '?timeout=600ms');
  const body = await res.json();
  assert.is(body.status, 'Failure');
  assert.match(body.message, /did not finish within CAPI's 0\.6s timeout/);
  assert.ok(Date.now() - started < 600, 'answered before the deadline');
});

test('a handler that throws gives a generic Failure; its message (which may hold input) is not echoed', async () => {
  const { app } = makeApp({ DiscoverVariables: async () => { throw new Error('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'); } });
  const res = await post(app, `${HOOK_PREFIX}/discovervariables/discover-variables`, '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"DiscoverVariablesRequest"}');
  const text = await res.text();
  assert.match(JSON.parse(text).message, /internal error in DiscoverVariables/);
  assert.not.match(text, /PRIVATE KEY/);
  assert.not.ok(logLines.some((l) => l.includes('PRIVATE KEY')));
});

test('success messages pass through; blocking retry is kept', async () => {
  const { app } = makeApp({ BeforeClusterCreate: async () => ({ ...success('waiting'), retryAfterSeconds: 15 }) });
  const body = await (await post(app, `${HOOK_PREFIX}/beforeclustercreate/before-cluster-create`, '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"BeforeClusterCreateRequest","cluster":{"metadata":{"name":"a","namespace":"b"}}}')).json();
  assert.equal(body, { apiVersion: 'hooks.runtime.cluster.x-k8s.io/v1alpha1', kind: 'BeforeClusterCreateResponse', status: 'Success', message: 'waiting', retryAfterSeconds: 15 });
});

test('health, readiness, metrics and 404', async () => {
  const { app } = makeApp();
  await post(app, `${HOOK_PREFIX}/discovery`, '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"DiscoveryRequest"}');
  assert.is((await app.fetch(new Request('https://x/healthz'))).status, 200);
  assert.is((await app.fetch(new Request('https://x/readyz'))).status, 200);
  const metrics = await (await app.fetch(new Request('https://x/metrics'))).text();
  assert.match(metrics, /capi_registry_addon_hook_requests_total\{hook="Discovery",status="Success"\} 1/);
  assert.match(metrics, /capi_registry_addon_hook_duration_seconds_count\{hook="Discovery"\} 1/);
  assert.match(metrics, /# TYPE capi_registry_addon_hook_duration_seconds histogram/);
  assert.is((await app.fetch(new Request('https://x/nope'))).status, 404);
  assert.is((await post(app, `${HOOK_PREFIX}/beforeclustercreate/other-handler`, '{}')).status, 404);
  assert.is((await app.fetch(new Request(`https://x${HOOK_PREFIX}/discovery`))).status, 404);
});

test.run();
