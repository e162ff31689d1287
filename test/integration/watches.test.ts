// The background loop on watches, against a real kube-apiserver (and one workload API server): what
// is ours and goes missing or changes is put back within 2 s, with the interval at 10 minutes so that
// only the watch can have done it; a Cluster that opts in after creation is acted on without a hook or
// a list; a hung workload API server does not hold back what the management side owes the nodes; in steady state a pass sends no request to the management API server (its audit log, by
// our user agent), which the extension's /metrics agrees with, and one to a workload API server. Each
// test starts its own extension (its replicas' own provider namespace) and uses its own Clusters: none
// needs another to have run.
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { realSuite } from './env/suite.ts';
import { sleep, waitFor } from './env/base.ts';
import { createCluster, ensureNamespace, extensionKubeconfig, markControlPlaneInitialized, ok, putKubeconfig } from './env/capi.ts';
import { startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';
import type { AuditEvent, KubeApi } from './env/kube.ts';

const test = realSuite('watches: put back at once, no request per pass (real API servers)');
let env: Env;
const mgmt = (): KubeApi => env.management!;
const ours = (e: AuditEvent) => (e.userAgent ?? '').startsWith('capi-registry-addon/');

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
});
test.after(async () => {
  await env?.stop();
});

/** One extension replica with its own provider namespace and the shipped RBAC; stopped by the caller. */
async function extension(provider: string, intervalSeconds: number): Promise<Extension> {
  await ensureNamespace(mgmt(), provider);
  const kubeconfig = await extensionKubeconfig(mgmt(), provider, { providerNamespaces: [provider] });
  return startExtension(process.env.WATCH_RUNTIME ?? 'node', { args: ['--kubeconfig', kubeconfig, '--provider-namespace', provider, '--mint-root-ca', '--converge-interval', String(intervalSeconds)] });
}
const secretPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`;
const proxyPath = (ns: string, name: string) => `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${ns}/helmchartproxies/${name}`;
const exists = async (path: string) => (await mgmt().request('GET', path)).status === 200;
/** Milliseconds until `check` holds, polled every 25 ms, at most `limitMs` (then the time waited). */
async function msUntil(check: () => Promise<boolean>, limitMs = 30_000): Promise<number> {
  const start = Date.now();
  while (!(await check()) && Date.now() - start < limitMs) await sleep(25);
  return Date.now() - start;
}
const metric = (text: string, name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);

test('a Cluster that opts in after creation is prepared without a hook and without a list of the Clusters', async () => {
  const ext = await extension('watch-optin', 600);
  try {
    await createCluster(mgmt(), 'watch-optin', 'late', { services: ['10.96.0.0/12'] });
    await sleep(1000);
    assert.not.ok(await exists(secretPath('watch-optin', 'late-registry-addon-ca')), 'not opted in: nothing made');
    const since = new Date().toISOString();
    ok(await mgmt().request('PATCH', '/apis/cluster.x-k8s.io/v1beta2/namespaces/watch-optin/clusters/late', JSON.stringify({ spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } } }), 'application/merge-patch+json'), 'opt in');
    const ms = await msUntil(() => exists(secretPath('watch-optin', 'late-registry-addon-ca')));
    console.log(`  opted in after creation: CA copy written ${ms} ms after the Cluster changed (interval 600 s, no hook)`);
    assert.ok(ms < 2000, `prepared within 2 s of opting in (took ${ms} ms)`);
    const clusterLists = mgmt().audit().filter((e) => ours(e) && e.stageTimestamp > since && e.verb === 'list' && e.objectRef?.resource === 'clusters');
    assert.is(clusterLists.length, 0, 'no list of the Clusters: the watch told');
  } finally {
    await ext.stop();
  }
});

test('a deleted or changed CA copy is put back within 2 s (interval 600 s: only the watch can have done it)', async () => {
  const ext = await extension('watch-ca', 600);
  try {
    await createCluster(mgmt(), 'watch-ca', 'c1', { services: ['10.96.0.0/12'], registry: {} });
    const path = secretPath('watch-ca', 'c1-registry-addon-ca');
    await waitFor('the CA copy', async () => ((await exists(path)) ? true : undefined));
    const original = (await mgmt().request('GET', path)).body.data['ca.crt'];
    ok(await mgmt().request('DELETE', path), 'delete the CA copy');
    const deleted = await msUntil(() => exists(path));
    ok(await mgmt().request('PATCH', path, JSON.stringify({ data: { 'ca.crt': Buffer.from('not a CA').toString('base64') } }), 'application/merge-patch+json'), 'change the CA copy');
    const changed = await msUntil(async () => (await mgmt().request('GET', path)).body.data?.['ca.crt'] === original);
    console.log(`  CA copy put back: ${deleted} ms after deletion, ${changed} ms after a change`);
    assert.ok(deleted < 2000, `deleted → back within 2 s (took ${deleted} ms)`);
    assert.ok(changed < 2000, `changed → restored within 2 s (took ${changed} ms)`);
    assert.is((await mgmt().request('GET', path)).body.data['ca.crt'], original, 'the same CA, not a new one');
  } finally {
    await ext.stop();
  }
});

/** An opted-in Cluster, initialized, whose kubeconfig points at the workload API server. */
async function initialize(ns: string, name: string): Promise<void> {
  await createCluster(mgmt(), ns, name, { services: ['10.96.0.0/12'], registry: {} });
  const url = new URL(env.workload!.url);
  ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
  await markControlPlaneInitialized(mgmt(), ns, name);
  await putKubeconfig(mgmt(), ns, name, readFileSync(env.workload!.kubeconfig, 'utf8'));
}

/** initialize; resolves once its HelmChartProxy exists. */
async function initializedCluster(ns: string, name: string): Promise<string> {
  await initialize(ns, name);
  const path = proxyPath(ns, `${name}-registry`);
  await waitFor('the HelmChartProxy', async () => ((await exists(path)) ? true : undefined));
  return path;
}

test('a deleted HelmChartProxy is put back within 2 s (interval 600 s)', async () => {
  const ext = await extension('watch-hcp', 600);
  try {
    const path = await initializedCluster('watch-hcp', 'h1');
    ok(await mgmt().request('DELETE', path), 'delete the HelmChartProxy');
    const ms = await msUntil(() => exists(path));
    console.log(`  HelmChartProxy put back ${ms} ms after deletion`);
    assert.ok(ms < 2000, `back within 2 s (took ${ms} ms)`);
  } finally {
    await ext.stop();
    // One initialized Cluster per workload API server: the next test's would share its registry.
    await mgmt().request('DELETE', '/apis/cluster.x-k8s.io/v1beta2/namespaces/watch-hcp/clusters/h1');
  }
});

test('a hung workload API server (SIGSTOP) does not hold back the management side: the CA copy, node script and credentials are made, and a deleted CA copy is back within 2 s', async () => {
  const ext = await extension('watch-hung', 600);
  const ns = 'watch-hung';
  env.workload!.freeze(true);
  try {
    await initialize(ns, 'g1');
    const names = ['g1-registry-addon-ca', 'g1-registry-addon-node-script', 'g1-registry-addon-push'];
    const madeMs = await msUntil(async () => (await Promise.all(names.map((n) => exists(secretPath(ns, n))))).every(Boolean));
    // The pass then waits on the workload API server until the request timeout and says so in the Cluster's mark.
    const status = await waitFor('the pass to fail on the hung server', async () => {
      const s = (await mgmt().request('GET', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/g1`)).body?.metadata?.annotations?.['capi-registry-addon.io/registry-status'];
      return typeof s === 'string' && s.startsWith('Retrying') ? s : undefined;
    }, 60_000);
    ok(await mgmt().request('DELETE', secretPath(ns, 'g1-registry-addon-ca')), 'delete the CA copy');
    const backMs = await msUntil(() => exists(secretPath(ns, 'g1-registry-addon-ca')));
    console.log(`  workload API server hung: ${names.length} management Secrets made in ${madeMs} ms, the CA copy back ${backMs} ms after deletion; the mark: ${status.slice(0, 120)}`);
    assert.ok(madeMs < 10_000, `the management side within 10 s though the workload API server hangs (took ${madeMs} ms)`);
    assert.ok(backMs < 2000, `the CA copy back within 2 s (took ${backMs} ms)`);
    assert.not.ok(await exists(proxyPath(ns, 'g1-registry')), 'no HelmChartProxy for a registry whose workload side could not be read');
  } finally {
    env.workload!.freeze(false);
    await ext.stop();
    await mgmt().request('DELETE', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/g1`);
  }
});

test('steady state: passes run every interval, send no request to the management API server and one per pass to a workload API server', async () => {
  const ext = await extension('watch-steady', 3);
  try {
    await initializedCluster('watch-steady', 's1');
    await createCluster(mgmt(), 'watch-steady', 's2', { services: ['10.96.0.0/12'], registry: {} });
    await waitFor('the CA copy', async () => ((await exists(secretPath('watch-steady', 's2-registry-addon-ca'))) ? true : undefined));
    // Settled: past the 10 s after our last writes in which an object is read from the API server when
    // its watch event has not come, then a window of three intervals.
    await sleep(11_000);
    const before = (await ext.request('GET', '/metrics', undefined, false)).text;
    const since = new Date().toISOString();
    await sleep(9000);
    const until = new Date().toISOString();
    const after = (await ext.request('GET', '/metrics', undefined, false)).text;
    const inWindow = (e: AuditEvent) => ours(e) && e.stageTimestamp > since && e.stageTimestamp < until;
    const requests = mgmt().audit().filter((e) => inWindow(e) && e.objectRef?.resource !== 'leases' && e.verb !== 'watch');
    const delta = (name: string, labels: string) => metric(after, name, labels) - metric(before, name, labels);
    const passes = delta('capi_registry_addon_background_passes_total', 'status="Success"');
    const apiReads = delta('capi_registry_addon_management_reads_total', 'from="api"');
    const workloadRequests = env.workload!.audit().filter(inWindow);
    console.log(`  steady state, 9 s at a 3 s interval: ${passes} passes, ${requests.length} management requests (${apiReads} reads not from the cache), ${workloadRequests.length} workload requests`);
    assert.ok(passes >= 4, `the loop ran (${passes} passes)`);
    assert.equal(requests.map((e) => `${e.verb} ${e.requestURI}`), [], 'no management request in steady state');
    assert.is(apiReads, 0, '/metrics agrees: every read from the cache');
    // s1 is passed over once per interval: three in the window, four if one falls on each edge.
    assert.ok(workloadRequests.length <= 4, `at most one workload request per pass over the initialized Cluster (${workloadRequests.length} in three intervals)`);
    assert.equal([...new Set(workloadRequests.map((e) => `${e.verb} ${e.objectRef?.resource} ${e.objectRef?.namespace}`))], ['list secrets capi-registry'], 'that request is the list of the registry\'s Secrets');
  } finally {
    await ext.stop();
  }
});

test.run();
