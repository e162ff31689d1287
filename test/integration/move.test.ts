// A Cluster moved between two real management API servers, as `clusterctl move` moves it (its objects
// recreated on the target: the Cluster, its Machines and every Secret of its namespace labelled for the
// move or with the Cluster's name; owner references rewired to the new uids; the provider namespace,
// with the root CA and the Cluster's issuer, stays behind). The target runs its own extension with its
// own root. Then the Cluster is upgraded there (its Machines replaced). Through it all, a node that
// booted at any time trusts what the registry serves (real OpenSSL and a real Distribution over TLS),
// and no hook blocks.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { realSuite } from './env/suite.ts';
import { openssl, workDir } from './env/base.ts';
import { createCluster, ensureNamespace, extensionKubeconfig, getCluster, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig } from './env/capi.ts';
import { startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';
import { startKube, WRITE_VERBS, type KubeApi } from './env/kube.ts';
import { startRegistry } from './env/registry.ts';
import { components } from './env/components.ts';
import { rolloverRecordSecretName } from '../../src/render/metadata.ts';

const test = realSuite('clusterctl move to a management cluster with another root, then an upgrade (two real management API servers)');
const PROVIDER = 'capi-registry-addon-system';
const NS = 'moved';
const NAME = 'm1';
const CAPI = '/apis/cluster.x-k8s.io/v1beta2';
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const certs = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
let env: Env;
let target: KubeApi;
let source: Extension;
let moved: Extension;

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
  target = await startKube('management-b', { serviceCidr: '10.128.0.0/12' });
  await target.installCrds([...components().crds.capi.dirs, ...components().crds.caaph.dirs]);
  for (const [api, which] of [[env.management!, 'a'], [target, 'b']] as const) {
    await ensureNamespace(api, PROVIDER);
    const kubeconfig = await extensionKubeconfig(api, `capi-registry-addon-${which}`, { providerNamespaces: [PROVIDER] });
    const ext = await startExtension(which === 'a' ? 'node' : 'deno', { args: ['--no-seed', '--kubeconfig', kubeconfig, '--provider-namespace', PROVIDER, '--mint-root-ca', '--log-level', 'debug'] });
    if (which === 'a') source = ext;
    else moved = ext;
  }
});
test.after(async () => {
  await source?.stop();
  await moved?.stop();
  await target?.stop();
  await env?.stop();
});

const hook = async (ext: Extension, api: KubeApi, name: keyof typeof HOOK_PATHS, extra: Record<string, unknown> = {}) => {
  const r = await ext.post(HOOK_PATHS[name], lifecycleRequest(name, await getCluster(api, NS, NAME), extra));
  assert.is(r.status, 200, r.text);
  const json = r.json() as { status: string; message?: string; retryAfterSeconds?: number };
  assert.is(json.status, 'Success', `${name}: ${json.message}`);
  assert.not.match(json.message ?? '', /^registry not deployed yet/, `${name} must not hand over to the background loop: ${json.message}`);
  return json;
};
const machine = (name: string) => ({
  apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Machine', metadata: { name, namespace: NS, labels: { 'cluster.x-k8s.io/cluster-name': NAME } },
  spec: { clusterName: NAME, bootstrap: { dataSecretName: `${name}-bootstrap` }, infrastructureRef: { apiGroup: 'infrastructure.cluster.x-k8s.io', kind: 'GenericInfrastructureMachine', name } },
});
const copyOn = async (api: KubeApi) => (await api.request('GET', `/api/v1/namespaces/${NS}/secrets/${NAME}-registry-addon-ca`)).body;
const servedTls = async () => (await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).body;

/** What a node that trusts `caPem` (its ca.crt file) gets from a real Distribution serving `tls`: curl's verdict (Go's TLS, like containerd's, takes every certificate of the file as an anchor; curl does the same). */
async function nodeTrusts(caPem: string, tls: { 'tls.crt': string; 'tls.key': string; root: string }, name: string): Promise<boolean> {
  const dir = workDir('move', name);
  writeFileSync(join(dir, 'tls.crt'), tls['tls.crt']);
  writeFileSync(join(dir, 'tls.key'), tls['tls.key']);
  writeFileSync(join(dir, 'node-ca.crt'), caPem);
  // The harness waits for /v2/ trusting the root (leaf, issuer, root: a full chain).
  const registry = await startRegistry(`move-${name}`, { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), ca: tls.root });
  try {
    const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(dir, 'node-ca.crt'), `${registry.url}/v2/`], { encoding: 'utf8' });
    const verify = spawnSync('openssl', ['verify', '-partial_chain', '-CAfile', 'node-ca.crt', '-untrusted', 'tls.crt', 'tls.crt'], { cwd: dir, encoding: 'utf8' });
    assert.is(r.status === 0 && r.stdout === '200', verify.status === 0, `curl (${r.status} ${r.stdout} ${r.stderr.trim()}) and openssl (${verify.stdout.trim()} ${verify.stderr.trim()}) agree`);
    return r.status === 0 && r.stdout === '200';
  } finally {
    await registry.stop();
  }
}
const rootOf = async (api: KubeApi) => text((await api.request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/registry-addon-root-ca`)).body.data['tls.crt']);
const tlsData = async (s: { data: Record<string, string> }, api: KubeApi) => ({ 'tls.crt': text(s.data['tls.crt']!), 'tls.key': text(s.data['tls.key']!), root: await rootOf(api) });

/** clusterctl move, for what matters here: recreate the Cluster, its Machines and its namespace's Secrets on the target, owners rewired; delete them on the source. */
async function moveCluster(from: KubeApi, to: KubeApi) {
  const clean = (o: any) => {
    const { uid, resourceVersion, creationTimestamp, managedFields, generation, ownerReferences, ...metadata } = o.metadata;
    return { ...o, metadata, status: undefined };
  };
  await ensureNamespace(to, NS);
  const cluster = await getCluster(from, NS, NAME);
  const created = ok(await to.request('POST', `${CAPI}/namespaces/${NS}/clusters`, clean(cluster)), 'Cluster on the target').body;
  ok(await to.request('PATCH', `${CAPI}/namespaces/${NS}/clusters/${NAME}/status`, JSON.stringify({ status: cluster.status }), 'application/merge-patch+json'), 'Cluster status');
  const owner = { apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', name: NAME, uid: created.metadata.uid };
  for (const m of (await from.request('GET', `${CAPI}/namespaces/${NS}/machines`)).body.items) ok(await to.request('POST', `${CAPI}/namespaces/${NS}/machines`, { ...clean(m), metadata: { ...clean(m).metadata, ownerReferences: [owner] } }), `Machine ${m.metadata.name}`);
  const secrets = (await from.request('GET', `/api/v1/namespaces/${NS}/secrets`)).body.items.filter((s: any) => s.metadata.labels?.['clusterctl.cluster.x-k8s.io/move'] !== undefined || s.metadata.labels?.['cluster.x-k8s.io/cluster-name'] === NAME);
  for (const s of secrets) ok(await to.request('POST', `/api/v1/namespaces/${NS}/secrets`, { ...clean(s), metadata: { ...clean(s).metadata, ...(s.metadata.ownerReferences ? { ownerReferences: [owner] } : {}) } }), `Secret ${s.metadata.name}`);
  for (const m of (await from.request('GET', `${CAPI}/namespaces/${NS}/machines`)).body.items) await from.request('DELETE', `${CAPI}/namespaces/${NS}/machines/${m.metadata.name}`);
  await from.request('DELETE', `${CAPI}/namespaces/${NS}/clusters/${NAME}`);
  return secrets.map((s: any) => s.metadata.name as string).sort();
}

test('moved to a new root, then upgraded: no hook blocks, every node always trusts what is served, and the old issuer is dropped once the upgrade replaced every Machine', async () => {
  const a = env.management!;
  // On the source: an opted-in Cluster with two nodes, its registry deployed.
  await createCluster(a, NS, NAME, { services: ['10.96.0.0/12'], registry: {} });
  const url = new URL(env.workload!.url);
  ok(await a.request('PATCH', `${CAPI}/namespaces/${NS}/clusters/${NAME}`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
  await markControlPlaneInitialized(a, NS, NAME);
  await putKubeconfig(a, NS, NAME, readFileSync(env.workload!.kubeconfig, 'utf8'));
  for (const m of ['cp-old', 'worker-old']) ok(await a.request('POST', `${CAPI}/namespaces/${NS}/machines`, machine(m)), m);
  await hook(source, a, 'BeforeClusterCreate');
  await hook(source, a, 'AfterControlPlaneInitialized');
  const oldTrust = text((await copyOn(a)).data['ca.crt']);
  const oldTls = await servedTls();
  assert.equal(certs(oldTrust).length, 1);
  assert.ok(await nodeTrusts(oldTrust, await tlsData(oldTls, a), 'before-move'), 'a node of the source trusts its registry');

  const movedSecrets = await moveCluster(a, target);
  assert.ok(movedSecrets.includes(`${NAME}-registry-addon-ca`) && movedSecrets.includes(`${NAME}-kubeconfig`), movedSecrets.join());

  // On the target (its own root, no issuer for this Cluster): the upgrade starts. BCU is not held back;
  // the copy becomes a bundle; the registry keeps its certificate (the Machines trust only the old issuer).
  ok(await target.request('PATCH', `${CAPI}/namespaces/${NS}/clusters/${NAME}`, JSON.stringify({ spec: { topology: { version: 'v1.34.0' } } }), 'application/merge-patch+json'), 'version bump');
  const bcu = await hook(moved, target, 'BeforeClusterUpgrade');
  assert.match(bcu.message!, /^trust rollover since \S+: Machine\(s\) cp-old, worker-old booted before it and trust only the previous issuer, so the registry keeps its certificate from that issuer until they are replaced \(an upgrade replaces them\); HelmChartProxy moved\/m1-registry applied$/);
  const bundleCopy = await copyOn(target);
  const bundle = text(bundleCopy.data['ca.crt']);
  const rootB = text((await target.request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/registry-addon-root-ca`)).body.data['tls.crt']);
  assert.equal(certs(bundle).length, 2);
  assert.is(certs(bundle)[1], certs(oldTrust)[0], 'the old issuer is kept, after the new one');
  const dir = workDir('move', 'issuer');
  writeFileSync(join(dir, 'root-b.crt'), rootB);
  writeFileSync(join(dir, 'issuer.crt'), certs(bundle)[0]!);
  assert.is(openssl(['verify', '-CAfile', 'root-b.crt', 'issuer.crt'], dir).trim(), 'issuer.crt: OK', 'the new issuer is the target root\'s');
  assert.is((await servedTls()).metadata.resourceVersion, oldTls.metadata.resourceVersion, 'registry-tls untouched');
  assert.ok(await nodeTrusts(oldTrust, await tlsData(oldTls, a), 'old-node-after-move'), 'an old node still trusts the registry');
  assert.ok(await nodeTrusts(bundle, await tlsData(oldTls, a), 'new-node-during-rollover'), 'a node booted with the bundle trusts it too');
  const status = (await getCluster(target, NS, NAME)).metadata.annotations['capi-registry-addon.io/registry-status'];
  assert.is(status, 'Deployed');
  // What older nodes trust is recorded where no tenant writes: the issuer the served chain names, and when.
  const record = (await target.request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/${await rolloverRecordSecretName(NS, NAME)}`)).body;
  assert.equal(certs(text(record.data['ca.crt'])), [certs(oldTrust)[0]]);
  const since = text(record.data.since);
  assert.is(text(bundleCopy.data['rollover-since']), since);
  // Retried and day-2 passes change nothing while old Machines remain.
  const rv = bundleCopy.metadata.resourceVersion;
  await hook(moved, target, 'AfterControlPlaneInitialized');
  assert.is((await copyOn(target)).metadata.resourceVersion, rv);
  // Whoever can write Secrets in the Cluster's namespace puts a CA of their own into the copy and a start in
  // the future (which would keep the rollover open for good): the next pass puts back exactly what the record says.
  const planted = (await import('../../src/pki/root-ca.ts')).mintRootCa({ now: new Date() });
  const b64 = (v: string) => Buffer.from(v).toString('base64');
  ok(await target.request('PATCH', `/api/v1/namespaces/${NS}/secrets/${NAME}-registry-addon-ca`, JSON.stringify({ data: { 'ca.crt': b64(`${bundle}${(await planted)['tls.crt']}`), 'rollover-since': b64('2099-01-01T00:00:00.000Z') } }), 'application/merge-patch+json'), 'planted');
  await hook(moved, target, 'AfterControlPlaneInitialized');
  const restored = await copyOn(target);
  assert.equal(certs(text(restored.data['ca.crt'])), certs(bundle), 'the planted CA is gone');
  assert.is(text(restored.data['rollover-since']), since, 'the start is the recorded one');

  // The upgrade replaces every Machine: new ones are created (they boot from the bundle), the old ones go.
  await new Promise((r) => setTimeout(r, 11_000)); // past the rollover's clock-skew allowance
  for (const m of ['cp-new', 'worker-new']) ok(await target.request('POST', `${CAPI}/namespaces/${NS}/machines`, machine(m)), m);
  const partial = await hook(moved, target, 'AfterControlPlaneInitialized');
  assert.match(partial.message!, /Machine\(s\) cp-old, worker-old booted before it/, 'not while old Machines remain');
  for (const m of ['cp-old', 'worker-old']) ok(await target.request('DELETE', `${CAPI}/namespaces/${NS}/machines/${m}`), m);

  const switched = await hook(moved, target, 'AfterControlPlaneInitialized');
  assert.match(switched.message!, /^trust rollover since \S+: every Machine trusts the new issuer, so the registry now gets its certificate; the previous issuer leaves m1-registry-addon-ca once the registry's pods serve it; registry-tls issued \(not signed by the Cluster's current issuer\); HelmChartProxy moved\/m1-registry applied$/);
  const newTls = await servedTls();
  assert.ok(await nodeTrusts(bundle, await tlsData(newTls, target), 'new-node-after-switch'), 'the new nodes trust the new certificate');
  assert.not.ok(await nodeTrusts(oldTrust, await tlsData(newTls, target), 'old-trust-after-switch'), 'only the old issuer would not (no such node is left)');
  assert.is(text((await copyOn(target)).data['ca.crt']), bundle, 'the bundle stays for this pass');

  // The old issuer stays until the pods serve the new certificate. No CAAPH and no kubelet in this suite:
  // the StatefulSet is created from the HelmChartProxy's manifest as CAAPH installs it, and its status
  // written as the StatefulSet controller reports it once the kubelet ran the pods (issue 25's suite runs them).
  const waitingForSet = await hook(moved, target, 'AfterControlPlaneInitialized');
  assert.match(waitingForSet.message!, /^trust rollover since \S+: the registry StatefulSet is not there yet; m1-registry-addon-ca keeps the previous issuer until they serve the certificate from the new one; /);
  const proxy = (await target.request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${NS}/helmchartproxies/${NAME}-registry`)).body;
  const set = JSON.parse(proxy.spec.valuesTemplate).manifests.find((m: any) => m.kind === 'StatefulSet');
  const created = ok(await env.workload!.request('POST', '/apis/apps/v1/namespaces/capi-registry/statefulsets', set), 'StatefulSet').body;
  const rolling = await hook(moved, target, 'AfterControlPlaneInitialized');
  assert.match(rolling.message!, /the registry's pods have not all rolled to it \(0\/2 updated, 0\/2 Ready\); m1-registry-addon-ca keeps the previous issuer/);
  assert.is(text((await copyOn(target)).data['ca.crt']), bundle);
  ok(await env.workload!.request('PATCH', '/apis/apps/v1/namespaces/capi-registry/statefulsets/registry/status', JSON.stringify({ status: {
    observedGeneration: created.metadata.generation, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, currentReplicas: 2, currentRevision: 'registry-2', updateRevision: 'registry-2',
  } }), 'application/merge-patch+json'), 'StatefulSet status');

  const done = await hook(moved, target, 'AfterControlPlaneInitialized');
  assert.match(done.message!, /^trust rollover complete: m1-registry-addon-ca trusts only the new issuer; HelmChartProxy moved\/m1-registry unchanged$/);
  const finalCopy = await copyOn(target);
  assert.equal(Object.keys(finalCopy.data), ['ca.crt'], 'the rollover mark is gone');
  assert.equal(certs(text(finalCopy.data['ca.crt'])), [certs(bundle)[0]]);
  assert.ok(await nodeTrusts(text(finalCopy.data['ca.crt']), await tlsData(newTls, target), 'node-after-rollover'), 'a node booted now trusts the registry');
  assert.is((await target.request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/${await rolloverRecordSecretName(NS, NAME)}`)).status, 404, 'the record is gone');

  // Steady state again: a pass writes nothing on either API server.
  const writes = () => [target, env.workload!].flatMap((k) => k.audit()).filter((e) => WRITE_VERBS.has(e.verb) && (e.userAgent ?? '').startsWith('capi-registry-addon/')).length;
  const before = writes();
  assert.equal((await hook(moved, target, 'AfterControlPlaneInitialized')).message, `HelmChartProxy ${NS}/${NAME}-registry unchanged`);
  assert.is(writes(), before, 'no write after the rollover');
});

test.run();
