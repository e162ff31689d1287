// API faults met through the hooks, each made by real misconfiguration of the real API servers
// rather than a mock: RBAC that lacks a verb (403), a Secret CAPI has not written yet (404), a
// fail-closed admission webhook (500), a hung API server (SIGSTOP: CAPI's timeout), nothing
// listening, and a CRD that is not installed. Every answer must say what to do; ACPI answers Success
// (the registry must not hold the Cluster back) and marks the Cluster `Retrying: <reason>` for the
// background loop; BeforeClusterDelete must never hold deletion back.
import { readFileSync } from 'node:fs';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { RBAC_RULES } from '../../src/render/install.ts';
import { freePort, waitFor } from './env/base.ts';
import {
  createCluster, ensureNamespace, expectRetrying, extensionKubeconfig, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig, startDeleting,
} from './env/capi.ts';
import { RUNTIMES, startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';

const test = realSuite('hook answers to real API faults');
let env: Env;
const fulls: Record<string, Extension> = {};
const PROVIDER = 'capi-registry-addon-system';
// A short bound on BeforeClusterDelete's wait for the registry's volumes, so the test sees it end.
const args = (kubeconfig: string) => ['--no-seed', '--kubeconfig', kubeconfig, '--capi-version', 'v1.13', '--provider-namespace', PROVIDER, '--mint-root-ca', '--volume-release-timeout', '5'];

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
  await ensureNamespace(env.management!, PROVIDER);
  const kubeconfig = await extensionKubeconfig(env.management!, 'capi-registry-addon', { providerNamespaces: [PROVIDER] });
  for (const rt of Object.keys(RUNTIMES)) fulls[rt] = await startExtension(rt, { args: args(kubeconfig) });
});
test.after(async () => {
  env?.workload?.freeze(false);
  for (const ext of Object.values(fulls)) await ext?.stop();
  await env?.stop();
});

async function call(ext: Extension, hook: keyof typeof HOOK_PATHS, cluster: unknown, query = '?timeout=10s') {
  const r = await ext.post(HOOK_PATHS[hook], lifecycleRequest(hook, cluster), query);
  assert.is(r.status, 200);
  assert.not.match(r.text, /PRIVATE KEY/);
  return r.json();
}

/** An opted-in Cluster whose control plane is up and whose kubeconfig points at `kubeconfig`. */
async function readyCluster(ns: string, name: string, services = ['10.96.0.0/12']) {
  const cluster = await createCluster(env.management!, ns, name, { services, registry: {} });
  await markControlPlaneInitialized(env.management!, ns, name);
  await putKubeconfig(env.management!, ns, name, readFileSync(env.workload!.kubeconfig, 'utf8'));
  return cluster;
}

for (const rt of Object.keys(RUNTIMES)) {
  const full = () => fulls[rt]!;
  const index = Object.keys(RUNTIMES).indexOf(rt); // distinct service CIDRs per runtime force a new certificate
  test(`${rt}: 403: RBAC without helmchartproxies → ACPI retries in the background, naming the verb and resource; without delete → BeforeClusterDelete still Success`, async () => {
    const noProxies = RBAC_RULES.map((r) => r.rule).filter((r) => !(r.resources as readonly string[]).includes('helmchartproxies'));
    const ext = await startExtension(rt, { args: args(await extensionKubeconfig(env.management!, `no-proxies-${rt}`, { rules: noProxies, providerNamespaces: [PROVIDER] })) });
    try {
      const cluster = await readyCluster(`rbac-${rt}`, 'c1');
      const r = await call(ext, 'AfterControlPlaneInitialized', cluster);
      // The first request for the proxy is a read (compare before writing).
      const reason = `get HelmChartProxy rbac-${rt}/c1-registry: forbidden (403): grant the extension's ServiceAccount "get" on helmchartproxies in that namespace (see the RBAC rules in 'capi-registry-addon manifests')`;
      assert.is(await expectRetrying(env.management!, r, `rbac-${rt}`, 'c1'), reason);
      // The failure is also an Event on the Cluster (kubectl describe cluster shows it), once.
      const event = await waitFor('the Warning Event on the Cluster', async () => {
        const list = (await env.management!.request('GET', `/api/v1/namespaces/rbac-${rt}/events`)).body.items as any[];
        return list.find((e) => e.reason === 'RegistryAddonAfterControlPlaneInitializedFailed');
      }, 10_000);
      assert.equal([event.type, event.involvedObject.kind, event.involvedObject.name, event.involvedObject.uid, event.message], ['Warning', 'Cluster', 'c1', cluster.metadata.uid, `Cluster rbac-${rt}/c1: ${reason}`]);
      const again = await call(ext, 'AfterControlPlaneInitialized', cluster);
      assert.equal(again, r, 'the same state, the same answer (CAPI shows it in conditions: it must not change)');
      const events = (await env.management!.request('GET', `/api/v1/namespaces/rbac-${rt}/events`)).body.items as any[];
      assert.is(events.filter((e) => e.reason === 'RegistryAddonAfterControlPlaneInitializedFailed').length, 1, 'a repeated failure is not recorded again within 5 minutes');
      const del = await call(ext, 'BeforeClusterDelete', await startDeleting(env.management!, `rbac-${rt}`, 'c1'));
      assert.equal([del.status, del.retryAfterSeconds], ['Success', 0]);
      assert.match(del.message, new RegExp(`deletion not held back, but delete HelmChartProxy rbac-${rt}/c1-registry: forbidden \\(403\\)`));
    } finally {
      await ext.stop();
    }
  });

  test(`${rt}: 404: no kubeconfig Secret yet → retried in the background, saying CAPI writes it`, async () => {
    const cluster = await createCluster(env.management!, `missing-${rt}`, 'c1', { services: ['10.96.0.0/12'], registry: {} });
    const r = await call(full(), 'AfterControlPlaneInitialized', cluster);
    assert.is(await expectRetrying(env.management!, r, `missing-${rt}`, 'c1'), `Secret missing-${rt}/c1-kubeconfig (key value) not found: Cluster API writes it once the control plane is initialized; it is retried`);
  });

  test(`${rt}: 500: a fail-closed admission webhook on the workload cluster → retried, quoting the API server, nothing half-written; Deployed once fixed`, async () => {
    const workload = env.workload!;
    const hook = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations';
    ok(await workload.request('POST', hook, {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'broken' },
      webhooks: [{ name: 'broken.example.com', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', timeoutSeconds: 2,
        clientConfig: { url: `https://127.0.0.1:${await freePort()}/validate` },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['secrets'] }] }],
    }), 'webhook');
    try {
      const cluster = await readyCluster(`webhook-${rt}`, 'c1', [`10.${70 + index}.0.0/16`]);
      const r = await call(full(), 'AfterControlPlaneInitialized', cluster);
      const said = await expectRetrying(env.management!, r, `webhook-${rt}`, 'c1');
      assert.match(said, /^(create|patch) Secret capi-registry\/registry-tls: the API server failed \(500\): Internal error occurred: failed calling webhook "broken\.example\.com".*; it is retried$/, said);
      assert.is((await env.management!.request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/webhook-${rt}/helmchartproxies/c1-registry`)).status, 404, 'no proxy for a registry without its certificate');
    } finally {
      await workload.request('DELETE', `${hook}/broken`);
    }
    // The fault fixed, the same hook converges.
    const cluster = (await env.management!.request('GET', `/apis/cluster.x-k8s.io/v1beta2/namespaces/webhook-${rt}/clusters/c1`)).body;
    const fixed = await call(full(), 'AfterControlPlaneInitialized', cluster);
    assert.is(fixed.status, 'Success');
    assert.match(fixed.message, new RegExp(`^registry-tls issued \\(.+\\); HelmChartProxy webhook-${rt}/c1-registry applied$`), fixed.message);
    const marked = (await env.management!.request('GET', `/apis/cluster.x-k8s.io/v1beta2/namespaces/webhook-${rt}/clusters/c1`)).body;
    assert.is(marked.metadata.annotations['capi-registry-addon.io/registry-status'], 'Deployed');
  });

  test(`${rt}: timeout: a hung workload API server (SIGSTOP) → Success before CAPI's ?timeout (the work goes on in the background), BeforeClusterDelete answers before it too (waiting, bounded, for the volumes it cannot delete yet), success once it answers`, async () => {
    const cluster = await readyCluster(`hung-${rt}`, 'c1', [`10.${80 + index}.0.0/16`]);
    env.workload!.freeze(true);
    try {
      const started = Date.now();
      const r = await call(full(), 'AfterControlPlaneInitialized', cluster, '?timeout=3s');
      const ms = Date.now() - started;
      assert.is(r.status, 'Success');
      assert.is(r.message, "registry deployment still in progress as CAPI's timeout nears; capi-registry-addon finishes it in the background: see the Cluster's annotation capi-registry-addon.io/registry-status and its Events");
      assert.ok(ms < 3000, `answered before CAPI gives up (${ms} ms)`);
      // The hung call still holds the Cluster; deletion must not wait behind it.
      const body = await startDeleting(env.management!, `hung-${rt}`, 'c1');
      const deleting = Date.now();
      const del = await call(full(), 'BeforeClusterDelete', body, '?timeout=3s');
      // The registry's volumes cannot be deleted while the workload API server hangs: deletion waits (bounded, see volumes.test.ts).
      assert.equal([del.status, del.retryAfterSeconds], ['Success', 10], del.message);
      assert.match(del.message!, /cannot delete the registry's volumes yet: the workload API server did not answer .*deletion waits up to 5s, until 20\d\d-\d\d-\d\dT[\d:]+Z$/);
      assert.ok(Date.now() - deleting < 3000, `BeforeClusterDelete answered before CAPI's timeout, in ${Date.now() - deleting} ms`);
      // The bound passed (it counts from the Cluster's annotation, not from this process): deletion goes on, saying what to check.
      await new Promise((r) => setTimeout(r, Math.max(0, deleting + 5500 - Date.now())));
      const last = await call(full(), 'BeforeClusterDelete', body, '?timeout=3s');
      assert.equal([last.status, last.retryAfterSeconds], ['Success', 0], last.message);
      assert.match(last.message!, /gave up deleting the registry's volumes at 20\d\d-[\d-]+T[\d:]+Z \(5s\): the workload API server did not answer .*check the cloud volumes of namespace capi-registry \(claims data-registry-N\) and delete them by hand/);
      assert.is((await env.management!.request('GET', `/api/v1/namespaces/hung-${rt}/secrets/c1-registry-addon-ca`)).status, 404, 'the CA copy is gone');
    } finally {
      env.workload!.freeze(false);
    }
    assert.is((await call(full(), 'AfterControlPlaneInitialized', cluster)).status, 'Success');
  });

  test(`${rt}: nothing listening: a kubeconfig pointing at a closed port → retried, saying the API server cannot be reached`, async () => {
    const cluster = await readyCluster(`closed-${rt}`, 'c1');
    const kc = JSON.parse(readFileSync(env.workload!.kubeconfig, 'utf8'));
    kc.clusters[0].cluster.server = `https://127.0.0.1:${await freePort()}`;
    await putKubeconfig(env.management!, `closed-${rt}`, 'c1', JSON.stringify(kc));
    const r = await call(full(), 'AfterControlPlaneInitialized', cluster);
    assert.match(await expectRetrying(env.management!, r, `closed-${rt}`, 'c1'), /^list Secret in capi-registry \(selector type!=helm\.sh\/release\.v1\): the API server could not be reached \(.+\); it is retried$/);
  });
}

test('CAAPH not installed (its CRD deleted) → retried in the background, saying to install it', async () => {
  const cluster = await readyCluster('nocaaph', 'c1');
  ok(await env.management!.request('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/helmchartproxies.addons.cluster.x-k8s.io'), 'delete CRD');
  // A fresh extension: client-node caches API discovery per process.
  const ext = await startExtension('node', { args: args(await extensionKubeconfig(env.management!, 'after-crd-delete', { providerNamespaces: [PROVIDER] })) });
  try {
    const r = await ext.post(HOOK_PATHS.AfterControlPlaneInitialized, lifecycleRequest('AfterControlPlaneInitialized', cluster));
    assert.is(await expectRetrying(env.management!, r.json(), 'nocaaph', 'c1'), 'get HelmChartProxy nocaaph/c1-registry: this API server does not serve HelmChartProxy: install the provider that defines it (for HelmChartProxy: clusterctl init --addon helm)');
  } finally {
    await ext.stop();
  }
});

test.run();
