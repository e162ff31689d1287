// BeforeClusterCreate's work against a real management API server with the CAPI CRDs.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { setupCluster, type SetupDeps } from '../../src/addon/setup.ts';
import { loadKubeConfig } from '../../src/kube/connection.ts';
import { kubeClient } from '../../src/kube/client.ts';
import { mintRootCa } from '../../src/pki/root-ca.ts';
import { clusterIssuerSecretName, rolloverRecordSecretName } from '../../src/render/metadata.ts';
import { ok } from './env/capi.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import type { ClusterRef } from '../../src/runtime-sdk/types.ts';
import { freePort, openssl, workDir } from './env/base.ts';
import { startEnv, type Env } from './env/index.ts';
import { makeLeaf } from './env/pki.ts';

const test = realSuite('BeforeClusterCreate setup (real API server)');
let env: Env;
const NS = 'capi-registry-addon-system';
let deps: SetupDeps;
let clusterRef: ClusterRef;

const kubeconfigFor = (server: string, ca: string, cert: string, key: string) => {
  const file = join(workDir('kubeconfigs'), `${Math.random().toString(36).slice(2)}.json`);
  const b = (s: string) => Buffer.from(s).toString('base64');
  writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'c', clusters: [{ name: 'c', cluster: { server, 'certificate-authority-data': b(ca) } }],
    users: [{ name: 'u', user: { 'client-certificate-data': b(cert), 'client-key-data': b(key) } }], contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }] }));
  return file;
};
const clientFor = async (file: string) => kubeClient(await loadKubeConfig({ ok: true, kind: 'file', source: file }));

test.before(async () => {
  env = await startEnv({ management: true });
  const api = env.management!;
  for (const ns of [NS, 'team-a']) await api.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const created = await api.request('POST', '/apis/cluster.x-k8s.io/v1beta2/namespaces/team-a/clusters', {
    apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name: 'c1', namespace: 'team-a' },
    spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { classRef: { name: 'quick-start' }, version: 'v1.33.1',
      variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } },
  });
  assert.is(created.status, 201, created.text);
  const parsed = parseCluster(created.body);
  assert.ok(parsed.ok);
  if (parsed.ok) clusterRef = parsed.value;
  deps = { management: await clientFor(api.kubeconfig), providerNamespace: NS, mintRootCa: true, clusterApiVersion: 'cluster.x-k8s.io/v1beta2', now: () => new Date() };
});
test.after(async () => {
  await env?.stop();
});

const secret = async (ns: string, name: string) => (await env.management!.request('GET', `/api/v1/namespaces/${ns}/secrets/${name}`)).body;
const del = (ns: string, name: string) => env.management!.request('DELETE', `/api/v1/namespaces/${ns}/secrets/${name}`);
const text = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

test('no root CA and minting off: Success with retryAfterSeconds and what to install', async () => {
  const r = await setupCluster(clusterRef, { ...deps, mintRootCa: false });
  assert.equal(r, { status: 'Success', retryAfterSeconds: 30, message: `root CA Secret ${NS}/registry-addon-root-ca not found: install cert-manager and the Certificate from 'capi-registry-addon manifests', or run the extension with --mint-root-ca` });
  assert.is((await env.management!.request('GET', '/api/v1/namespaces/team-a/secrets/c1-registry-addon-ca')).status, 404);
});

/** openssl's verdict on `certPem` against `caPem` alone. */
const verifies = (certPem: string, caPem: string) => {
  const dir = workDir('setup-verify');
  writeFileSync(join(dir, 'ca.pem'), caPem);
  writeFileSync(join(dir, 'cert.pem'), certPem);
  return openssl(['verify', '-CAfile', 'ca.pem', 'cert.pem'], dir).trim() === 'cert.pem: OK';
};
const issuerName = () => clusterIssuerSecretName('team-a', 'c1');

test('concurrent first calls with minting: one root, one issuer for the Cluster, and the copy holds only the issuer certificate, owned by the Cluster and move-labelled', async () => {
  const results = await Promise.all(Array.from({ length: 5 }, () => setupCluster(clusterRef, deps)));
  for (const r of results) assert.equal(r, { status: 'Success' });
  const root = await secret(NS, 'registry-addon-root-ca');
  assert.is(root.type, 'kubernetes.io/tls');
  const issuers = (await env.management!.request('GET', `/api/v1/namespaces/${NS}/secrets?labelSelector=capi-registry-addon.io/cluster-issuer`)).body.items;
  assert.equal(issuers.map((i: any) => i.metadata.name), [await issuerName()], 'exactly one issuer for the Cluster');
  const copy = await secret('team-a', 'c1-registry-addon-ca');
  assert.equal(Object.keys(copy.data), ['ca.crt'], 'only ca.crt is copied');
  assert.is(text(copy.data['ca.crt']), text(issuers[0].data['tls.crt']), 'the copy is the issuer certificate, never its key');
  assert.is.not(text(copy.data['ca.crt']), text(root.data['ca.crt']));
  assert.ok(verifies(text(copy.data['ca.crt']), text(root.data['ca.crt'])), 'openssl: the issuer chains to the root');
  assert.is(copy.metadata.ownerReferences[0].uid, clusterRef.uid);
  assert.is(copy.metadata.labels['clusterctl.cluster.x-k8s.io/move'], '');
  assert.is(copy.metadata.labels['cluster.x-k8s.io/cluster-name'], 'c1');
});

test('repeated calls change nothing (same root, issuer and copy resourceVersions)', async () => {
  const all = async () => [await secret(NS, 'registry-addon-root-ca'), await secret(NS, await issuerName()), await secret('team-a', 'c1-registry-addon-ca')];
  const before = await all();
  for (let i = 0; i < 3; i++) assert.equal(await setupCluster(clusterRef, deps), { status: 'Success' });
  const after = await all();
  assert.equal(after.map((s) => s.metadata.resourceVersion), before.map((s) => s.metadata.resourceVersion));
});

const certs = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];

test('before the control plane is initialized no node trusts the copy yet: under a new root (a move, no issuer for the Cluster) the new issuer replaces it whole; CAs and a rollover start planted in the copy are dropped; repeated calls write nothing', async () => {
  const copyBefore = text((await secret('team-a', 'c1-registry-addon-ca')).data['ca.crt']);
  // The new management cluster: its own root (cert-manager made it), no issuer Secret for this Cluster.
  await del(NS, 'registry-addon-root-ca');
  await del(NS, await issuerName());
  const other = await mintRootCa({ now: new Date() });
  const b = (s: string) => Buffer.from(s).toString('base64');
  await env.management!.request('POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b(other['tls.crt']), 'tls.key': b(other['tls.key']), 'ca.crt': b(other['ca.crt']) } });
  // Whoever can write Secrets in the Cluster's namespace adds a CA of their own and a start in the future.
  const planted = await mintRootCa({ now: new Date() });
  const stuffed = `${copyBefore.trim()}\n${planted['tls.crt'].trim()}\n`;
  ok(await env.management!.request('PATCH', '/api/v1/namespaces/team-a/secrets/c1-registry-addon-ca', JSON.stringify({ data: { 'ca.crt': b(stuffed), 'rollover-since': b('2099-01-01T00:00:00.000Z') } }), 'application/merge-patch+json'), 'planted');
  assert.equal(await setupCluster(clusterRef, deps), { status: 'Success' });
  const copy = await secret('team-a', 'c1-registry-addon-ca');
  const issuer = text((await secret(NS, await issuerName())).data['tls.crt']);
  assert.ok(verifies(issuer, other['tls.crt']), 'a new issuer under the new root');
  assert.equal(certs(text(copy.data['ca.crt'])), [issuer], 'only the new issuer: nothing planted is kept');
  // The planted rollover-since stays in the copy under its writer's field manager (our apply owns ca.crt only): nothing reads it.
  assert.is(text(copy.data['rollover-since'] ?? ''), '2099-01-01T00:00:00.000Z', 'left as planted, and ignored');
  assert.is((await env.management!.request('GET', `/api/v1/namespaces/${NS}/secrets/${await rolloverRecordSecretName('team-a', 'c1')}`)).status, 404, 'no rollover record');
  for (let i = 0; i < 2; i++) assert.equal(await setupCluster(clusterRef, deps), { status: 'Success' });
  assert.is((await secret('team-a', 'c1-registry-addon-ca')).metadata.resourceVersion, copy.metadata.resourceVersion, 'repeated calls write nothing');
});

test('an issuer the current root did not sign (the root re-keyed) is refused with what to do; the copy is kept', async () => {
  const copy = await secret('team-a', 'c1-registry-addon-ca');
  await del(NS, 'registry-addon-root-ca');
  const other = await mintRootCa({ now: new Date() });
  const b = (s: string) => Buffer.from(s).toString('base64');
  await env.management!.request('POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b(other['tls.crt']), 'tls.key': b(other['tls.key']), 'ca.crt': b(other['ca.crt']) } });
  const r = await setupCluster(clusterRef, deps);
  assert.is(r.status, 'Failure');
  assert.match(r.message!, /registry-addon-issuer-[0-9a-f]{20} was not issued by Secret capi-registry-addon-system\/registry-addon-root-ca \(the root was replaced with another key\?\): put that root back, or delete registry-addon-issuer-[0-9a-f]{20} so that a new issuer is made/);
  assert.is((await secret('team-a', 'c1-registry-addon-ca')).metadata.resourceVersion, copy.metadata.resourceVersion);
  // Deleting the issuer, as the message says: a new one (before initialization, the copy trusts only it).
  await del(NS, await issuerName());
  assert.equal(await setupCluster(clusterRef, deps), { status: 'Success' });
  const bundle = certs(text((await secret('team-a', 'c1-registry-addon-ca')).data['ca.crt']));
  assert.equal(bundle, [text((await secret(NS, await issuerName())).data['tls.crt'])]);
});

test('a copy made before per-cluster issuers (the root itself) moves to an issuer; a root with pathLen 0 (older mints) keeps signing directly', async () => {
  await del('team-a', 'c1-registry-addon-ca');
  const root = await secret(NS, 'registry-addon-root-ca');
  const b = (s: string) => Buffer.from(s).toString('base64');
  await env.management!.request('POST', '/api/v1/namespaces/team-a/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'c1-registry-addon-ca' }, data: { 'ca.crt': root.data['ca.crt'] } });
  assert.equal(await setupCluster(clusterRef, deps), { status: 'Success' });
  const moved = text((await secret('team-a', 'c1-registry-addon-ca')).data['ca.crt']);
  assert.is(moved, text((await secret(NS, await issuerName())).data['tls.crt']));
  // A pathLen-0 root, as earlier builds minted: an issuer below it would be refused by Go and OpenSSL.
  await del(NS, 'registry-addon-root-ca');
  await del(NS, await issuerName());
  await del('team-a', 'c1-registry-addon-ca');
  const dir = workDir('setup-pathlen0');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-key', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=old-mint', '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const crt = readFileSync(join(dir, 'ca.crt'), 'utf8');
  await env.management!.request('POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls',
    data: { 'tls.crt': b(crt), 'tls.key': b(readFileSync(join(dir, 'ca.key'), 'utf8')), 'ca.crt': b(crt) } });
  assert.equal(await setupCluster(clusterRef, deps), { status: 'Success' });
  assert.is(text((await secret('team-a', 'c1-registry-addon-ca')).data['ca.crt']), crt);
  assert.is((await env.management!.request('GET', `/api/v1/namespaces/${NS}/secrets/${await issuerName()}`)).status, 404, 'no issuer under a pathLen-0 root');
});

test("a cert-manager-shaped RSA CA (PKCS#1 key) is used as is; the Cluster's issuer chains to it", async () => {
  await del(NS, 'registry-addon-root-ca');
  await del(NS, await issuerName());
  await del('team-a', 'c1-registry-addon-ca');
  const dir = workDir('setup-rsa');
  openssl(['genrsa', '-traditional', '-out', 'ca.key', '2048'], dir);
  openssl(['req', '-x509', '-key', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=cm-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const crt = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const b = (s: string) => Buffer.from(s).toString('base64');
  await env.management!.request('POST', `/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls',
    data: { 'tls.crt': b(crt), 'tls.key': b(readFileSync(join(dir, 'ca.key'), 'utf8')), 'ca.crt': b(crt) } });
  assert.equal(await setupCluster(clusterRef, { ...deps, mintRootCa: false }), { status: 'Success' });
  assert.ok(verifies(text((await secret('team-a', 'c1-registry-addon-ca')).data['ca.crt']), crt));
});

test('API errors become Failures that say what to do: RBAC 403, no API server listening', async () => {
  const api = env.management!;
  const nobody = makeLeaf(api.ca, 'nobody', { client: true, subject: '/CN=nobody' });
  const forbidden = await setupCluster(clusterRef, { ...deps, management: await clientFor(kubeconfigFor(api.url, api.ca.pem, nobody.cert, nobody.key)) });
  assert.is(forbidden.status, 'Failure');
  assert.match(forbidden.message!, /^Cluster team-a\/c1: get Secret \S+: forbidden \(403\): grant the extension's ServiceAccount "get" on secrets/);
  const closed = `https://127.0.0.1:${await freePort()}`;
  const down = await setupCluster(clusterRef, { ...deps, management: await clientFor(kubeconfigFor(closed, api.ca.pem, api.admin.cert, api.admin.key)) });
  assert.is(down.status, 'Failure');
  assert.match(down.message!, /get Secret .*: the API server could not be reached \(.*\); it is retried/);
  assert.not.match(`${forbidden.message}${down.message}`, /BEGIN|PRIVATE/);
});

test('a Cluster that has not opted in: Success and nothing written', async () => {
  const parsed = parseCluster({ metadata: { name: 'plain', namespace: 'team-a', uid: 'x' }, spec: { topology: { variables: [] } } });
  assert.ok(parsed.ok);
  if (parsed.ok) assert.equal(await setupCluster(parsed.value, deps), { status: 'Success' });
  assert.is((await env.management!.request('GET', '/api/v1/namespaces/team-a/secrets/plain-registry-addon-ca')).status, 404);
});

test.run();
