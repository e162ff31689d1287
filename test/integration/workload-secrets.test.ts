// Workload-cluster Secrets written through the kubeconfig Secret CAPI keeps on the management cluster:
// two real API servers.
import { readFileSync } from 'node:fs';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { writeWorkloadSecrets, type WorkloadDeps } from '../../src/addon/workload-secrets.ts';
import { kubeClient } from '../../src/kube/client.ts';
import { listedSecrets } from '../../src/kube/listed-secrets.ts';
import { workloadClientCache } from '../../src/kube/workload-clients.ts';
import { loadKubeConfig } from '../../src/kube/connection.ts';
import { certificateFacts, decodeCertificate } from '../../src/pki/inspect.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { serverCertSans } from '../../src/render/metadata.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { freePort } from './env/base.ts';
import { ok } from './env/capi.ts';
import { startEnv, type Env } from './env/index.ts';

const test = realSuite('workload Secrets (two real API servers)');
let env: Env;
let deps: WorkloadDeps;
const parsed = parseCluster({ metadata: { name: 'c1', namespace: 'team-a', uid: 'u1' }, spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } } } });
if (!parsed.ok) throw new Error(parsed.message);
const cluster = parsed.value;
const layout = { replicas: 2, serviceDomain: 'cluster.local', serviceIp: '10.96.0.20', standbyIp: '10.96.0.21' };

const wsecret = async (name: string) => (await env.workload!.request('GET', `/api/v1/namespaces/capi-registry/secrets/${name}`)).body;
const putKubeconfig = async (text: string) => {
  await env.management!.request('DELETE', '/api/v1/namespaces/team-a/secrets/c1-kubeconfig');
  const r = await env.management!.request('POST', '/api/v1/namespaces/team-a/secrets', {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'c1-kubeconfig', labels: { 'cluster.x-k8s.io/cluster-name': 'c1' } }, type: 'cluster.x-k8s.io/secret', data: { value: Buffer.from(text).toString('base64') },
  });
  assert.is(r.status, 201, r.text);
};

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
  await env.management!.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } });
  deps = { management: await kubeClient(await loadKubeConfig({ ok: true, kind: 'file', source: env.management!.kubeconfig })), workloadClients: workloadClientCache(), now: () => new Date() };
});
test.after(async () => {
  await env?.stop();
});

test('no kubeconfig Secret yet: an error that says CAPI writes it and the hook is retried', async () => {
  const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'root');
  try {
    await writeWorkloadSecrets(cluster, layout, root, deps);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /Secret team-a\/c1-kubeconfig \(key value\) not found: Cluster API writes it once the control plane is initialized/);
  }
});

test('first call: namespace, registry-tls issued by the root with the registry SANs, shared HTTP secret; repeat: nothing changes', async () => {
  await putKubeconfig(readFileSync(env.workload!.kubeconfig, 'utf8'));
  const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'root');
  const first = await writeWorkloadSecrets(cluster, layout, root, deps);
  assert.equal(first.renewal, { renew: true, reasons: ['no server certificate yet'] });
  const tls = await wsecret('registry-tls');
  assert.is(tls.type, 'kubernetes.io/tls');
  const crt = Buffer.from(tls.data['tls.crt'], 'base64').toString('utf8');
  const leaf = decodeCertificate(crt, 'tls.crt');
  assert.ok(await leaf.verify(root.certificate));
  assert.equal(certificateFacts(leaf).dnsNames, serverCertSans(layout).dnsNames);
  assert.is(Buffer.from(tls.data['ca.crt'], 'base64').toString('utf8'), root.certPem);
  const http = await wsecret('registry-http-secret');
  assert.match(Buffer.from(http.data.secret, 'base64').toString('utf8'), /^[0-9a-f]{64}$/);

  const again = await writeWorkloadSecrets(cluster, layout, root, deps);
  assert.equal(again.renewal, { renew: false, reasons: [] });
  assert.is(again.tlsCertSha256, first.tlsCertSha256);
  assert.is((await wsecret('registry-tls')).metadata.resourceVersion, tls.metadata.resourceVersion);
  assert.is((await wsecret('registry-http-secret')).data.secret, http.data.secret, 'the shared secret never changes');
});

test('a new root CA: the certificate is renewed (reason given), the HTTP secret kept', async () => {
  const http = await wsecret('registry-http-secret');
  const before = await wsecret('registry-tls');
  const newRoot = await parseRootCa(await mintRootCa({ now: new Date() }), 'new root');
  const r = await writeWorkloadSecrets(cluster, layout, newRoot, deps);
  assert.equal(r.renewal.reasons, ["not signed by the Cluster's current issuer"]);
  const after = await wsecret('registry-tls');
  assert.is.not(after.data['tls.crt'], before.data['tls.crt']);
  assert.ok(await decodeCertificate(Buffer.from(after.data['tls.crt'], 'base64').toString('utf8'), 'x').verify(newRoot.certificate));
  assert.is((await wsecret('registry-http-secret')).data.secret, http.data.secret);
});

test('one list answers a pass\'s Secret reads: Helm\'s release records left out, a Secret written in the pass read again', async () => {
  const workload = await kubeClient(await loadKubeConfig({ ok: true, kind: 'file', source: env.workload!.kubeconfig }));
  // A release record as Helm stores one (CAAPH's installs leave them in the release namespace): never listed.
  const release = await env.workload!.request('POST', '/api/v1/namespaces/capi-registry/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sh.helm.release.v1.registry.v1' }, type: 'helm.sh/release.v1', data: { release: Buffer.from('x'.repeat(4096)).toString('base64') } });
  assert.is(release.status, 201, release.text);
  const since = new Date().toISOString();
  const listed = await listedSecrets(workload, 'capi-registry', { fieldSelector: 'type!=helm.sh/release.v1' });
  assert.ok(listed.any, 'our Secrets were listed: the namespace exists');
  const tls = await listed.client.readSecret('capi-registry', 'registry-tls');
  assert.is(tls?.resourceVersion, (await wsecret('registry-tls')).metadata.resourceVersion);
  assert.match(tls!.data['tls.crt']!, /BEGIN CERTIFICATE/);
  assert.is(await listed.client.getSecret('capi-registry', 'no-such-secret'), undefined, 'absent from the list: absent');
  assert.is(await listed.client.getObject({ apiVersion: 'v1', kind: 'Secret', namespace: 'capi-registry', name: 'sh.helm.release.v1.registry.v1' }), undefined, 'the release record is not held');
  const requests = () => env.workload!.audit().filter((e) => e.stageTimestamp > since && (e.userAgent ?? '').startsWith('capi-registry-addon/') && e.objectRef?.resource === 'secrets');
  assert.equal(requests().map((e) => `${e.verb} ${e.objectRef?.namespace}`), ['list capi-registry'], 'one request for all those reads');
  // Written in the pass: the list no longer says what it holds, so the next read goes to the API server.
  await listed.client.ensureSecret({ name: 'listed-probe', namespace: 'capi-registry', data: { a: '1' } });
  assert.equal(await listed.client.getSecret('capi-registry', 'listed-probe'), { a: '1' });
  assert.equal(requests().map((e) => e.verb), ['list', 'patch', 'get']);
  await env.workload!.request('DELETE', '/api/v1/namespaces/capi-registry/secrets/listed-probe');
  const empty = await listedSecrets(workload, 'no-such-namespace', { fieldSelector: 'type!=helm.sh/release.v1' });
  assert.is(empty.any, false, 'nothing listed: the namespace may not exist, so the pass makes sure of it');
});

test('the namespace stuffed with Secrets past the answer cap: the list is not read whole, each read goes to the API server', async () => {
  const workload = await kubeClient(await loadKubeConfig({ ok: true, kind: 'file', source: env.workload!.kubeconfig }), { maxResponseBytes: 8 * 1024 * 1024 });
  const filler = Buffer.from('x'.repeat(900_000)).toString('base64');
  const names = Array.from({ length: 10 }, (_, i) => `stuffed-${i}`);
  for (const name of names) ok(await env.workload!.request('POST', '/api/v1/namespaces/capi-registry/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { filler } }), name);
  try {
    const listed = await listedSecrets(workload, 'capi-registry', { fieldSelector: 'type!=helm.sh/release.v1' });
    assert.is(listed.any, false, 'not taken as a list');
    assert.is(listed.client, workload, 'reads go to the API server as before');
    assert.match((await listed.client.readSecret('capi-registry', 'registry-tls'))!.data['tls.crt']!, /BEGIN CERTIFICATE/);
  } finally {
    for (const name of names) await env.workload!.request('DELETE', `/api/v1/namespaces/capi-registry/secrets/${name}`);
  }
});

test('an unreachable workload API server: an error that says so, no key material', async () => {
  const kc = JSON.parse(readFileSync(env.workload!.kubeconfig, 'utf8'));
  kc.clusters[0].cluster.server = `https://127.0.0.1:${await freePort()}`;
  await putKubeconfig(JSON.stringify(kc));
  const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'root');
  try {
    await writeWorkloadSecrets(cluster, layout, root, deps);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /the API server could not be reached/);
    assert.not.match((err as Error).message, /BEGIN|PRIVATE/);
  }
});

test.run();
