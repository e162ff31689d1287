// The addon's whole lifecycle driven the way CAPI drives it: hook requests over HTTPS to the built
// bundle on Node, Deno and Bun, against a real management API server (CAPI, CAAPH, cert-manager
// CRDs) and a real workload API server. The extension runs as a user bound to exactly the ClusterRole
// our install manifests ship, so every step also proves the RBAC is enough.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import bcryptjs from 'bcryptjs';
import { mintRootCa } from '../../src/pki/root-ca.ts';
import { openssl, waitFor, workDir } from './env/base.ts';
import { makeImage } from './env/oci.ts';
import { startRegistry } from './env/registry.ts';
import {
  bindProviderNamespace, createCluster, expectRetrying, ensureNamespace, extensionKubeconfig, generatePatchesRequest, getCluster, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig, startDeleting,
} from './env/capi.ts';
import { clusterIssuerSecretName } from '../../src/render/metadata.ts';
import { RUNTIMES, startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';
import { makeCa, makeLeaf } from './env/pki.ts';

const test = realSuite('addon lifecycle through the hooks (real API servers, three runtimes)');
let env: Env;
let kubeconfig: string;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
  kubeconfig = await extensionKubeconfig(env.management!, 'capi-registry-addon');
});
test.after(async () => {
  await env?.stop();
});

type CaKind = 'minted' | 'cert-manager-rsa' | 'cert-manager-ecdsa';

/** The Secret cert-manager writes for our root Certificate: PKCS#1 / SEC1 keys ("traditional" PEM), ca.crt = tls.crt. */
function certManagerRoot(kind: 'rsa' | 'ec') {
  const ca = makeCa(`cm-${kind}-${Math.random().toString(36).slice(2, 7)}`, kind, 3650);
  openssl(['pkey', '-in', ca.keyFile, '-traditional', '-out', join(ca.dir, 'trad.key')]);
  const key = readFileSync(join(ca.dir, 'trad.key'), 'utf8');
  assert.match(key, kind === 'rsa' ? /BEGIN RSA PRIVATE KEY/ : /BEGIN EC PRIVATE KEY/);
  return { 'tls.crt': ca.pem, 'tls.key': key, 'ca.crt': ca.pem };
}

const mgmt = () => env.management!;
const secret = async (ns: string, name: string) => (await mgmt().request('GET', `/api/v1/namespaces/${ns}/secrets/${name}`));
const putRoot = async (ns: string, data: Record<string, string>) => {
  await mgmt().request('DELETE', `/api/v1/namespaces/${ns}/secrets/registry-addon-root-ca`);
  ok(await mgmt().request('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) }), 'root CA Secret');
};
const hcp = (ns: string, name: string) => mgmt().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${ns}/helmchartproxies/${name}-registry`);
const wsecret = async (name: string) => (await env.workload!.request('GET', `/api/v1/namespaces/capi-registry/secrets/${name}`)).body;

/** One extension under test, with every hook answer it gave (for the no-credential-leak check): made per test. */
interface Hooks {
  ext: Extension;
  answers: string[];
}
const hooksOf = (ext: Extension): Hooks => ({ ext, answers: [] });

async function call(h: Hooks, hook: keyof typeof HOOK_PATHS, body: string, query = '?timeout=10s') {
  const r = await h.ext.post(HOOK_PATHS[hook], body, query);
  h.answers.push(r.text);
  assert.is(r.status, 200, `${hook}: HTTP ${r.status} ${r.text}`);
  const json = r.json();
  assert.is(json.kind, `${hook}Response`);
  assert.not.match(r.text, /PRIVATE KEY/, 'no key material in any answer');
  return json;
}

/** openssl's verdict on a certificate: verified against `caPem`, and its SANs. */
function opensslFacts(certPem: string, caPem: string) {
  const dir = workDir('lifecycle-verify');
  writeFileSync(join(dir, 'leaf.crt'), certPem);
  writeFileSync(join(dir, 'ca.crt'), caPem);
  return {
    // leaf.crt is the served chain (leaf, then the Cluster's issuer): the issuer is the untrusted link to caPem.
    verify: openssl(['verify', '-CAfile', 'ca.crt', '-untrusted', 'leaf.crt', 'leaf.crt'], dir).trim(),
    sans: openssl(['x509', '-in', 'leaf.crt', '-noout', '-ext', 'subjectAltName'], dir),
    notAfter: Date.parse(openssl(['x509', '-in', 'leaf.crt', '-noout', '-enddate'], dir).trim().replace(/^notAfter=/, '')),
  };
}

/** One opted-in Cluster from BCC to delete; `services` picks IPv4 or IPv6. */
async function clusterLifecycle(h: Hooks, o: { ns: string; provider: string; name: string; services: string[]; serviceIp: string; sanIp: string }) {
  const { ns, name } = o;
  const { ext } = h;
  // A source registry whose login the Cluster names by Secret (in its own namespace).
  const corpPassword = `corp-${randomBytes(12).toString('hex')}`;
  await ensureNamespace(mgmt(), ns);
  ok(await mgmt().request('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-corp-login` }, data: { username: b64('mirror'), password: b64(`${corpPassword}\n`) } }), 'source login');
  const cluster = await createCluster(mgmt(), ns, name, { services: o.services, registry: { replicas: 2, sources: [{ name: 'corp', url: 'https://registry.corp.example:5000', credentialsSecretRef: { name: `${name}-corp-login` } }] } });

  // BeforeClusterCreate: five concurrent first calls.
  const bcc = await Promise.all(Array.from({ length: 5 }, () => call(h, 'BeforeClusterCreate', lifecycleRequest('BeforeClusterCreate', cluster))));
  for (const r of bcc) assert.equal([r.status, r.retryAfterSeconds], ['Success', 0], JSON.stringify(r));
  const root = (await secret(o.provider, 'registry-addon-root-ca')).body;
  const copy = (await secret(ns, `${name}-registry-addon-ca`)).body;
  assert.equal(Object.keys(copy.data), ['ca.crt'], 'only ca.crt leaves the provider namespace');
  const issuerName = await clusterIssuerSecretName(ns, name);
  const issuer = (await secret(o.provider, issuerName)).body;
  assert.is(text(copy.data['ca.crt']), text(issuer.data['tls.crt']), 'the nodes trust the Cluster\'s own issuer');
  assert.is(opensslFacts(text(copy.data['ca.crt']), text(root.data['ca.crt'])).verify, 'leaf.crt: OK', 'the issuer chains to the root');
  assert.equal(copy.metadata.ownerReferences.map((r: any) => [r.kind, r.name, r.uid]), [['Cluster', name, cluster.metadata.uid]]);
  assert.is(copy.metadata.labels['clusterctl.cluster.x-k8s.io/move'], '');
  // The credentials, made once beside the Cluster: node (hosts.toml with its header) and push (basic-auth).
  const node = (await secret(ns, `${name}-registry-addon-node`)).body;
  const push = (await secret(ns, `${name}-registry-addon-push`)).body;
  assert.is(push.type, 'kubernetes.io/basic-auth');
  assert.equal([text(node.data.username), text(push.data.username)], ['node', 'push']);
  const creds = { node: text(node.data.password), push: text(push.data.password) };
  for (const p of Object.values(creds)) assert.match(p, /^[A-Za-z0-9_-]{43}$/, '256-bit base64url password');
  assert.ok(text(node.data['hosts.toml']).includes(`authorization = "Basic ${b64(`node:${creds.node}`)}"`));
  for (const s of [node, push]) assert.equal([s.metadata.ownerReferences[0].uid, s.metadata.labels['clusterctl.cluster.x-k8s.io/move']], [cluster.metadata.uid, '']);

  // GeneratePatches: pure, node files with the Service IP from builtin.cluster.network.services.
  const gp = await call(h, 'GeneratePatches', generatePatchesRequest(ns, name, { services: o.services, registry: { replicas: 2 } }));
  assert.is(gp.status, 'Success');
  assert.is(gp.items.length, 2, 'KubeadmControlPlaneTemplate and KubeadmConfigTemplate');
  const ops = JSON.parse(text(gp.items[0].patch));
  const files = ops.flatMap((op: any) => (Array.isArray(op.value) ? op.value : [op.value]));
  const host = o.serviceIp.includes(':') ? `[${o.serviceIp}]` : o.serviceIp;
  const hosts = text(node.data['hosts.toml']);
  assert.ok(hosts.includes(`[host."https://${host}:443/v2"]`), hosts);
  assert.ok(files.some((f: any) => f?.contentFrom?.secret?.name === `${name}-registry-addon-ca`), 'the CA file comes from the copy');
  assert.equal(files.find((f: any) => f?.path === '/etc/containerd/capi-registry-addon/hosts.toml').contentFrom, { secret: { name: `${name}-registry-addon-node`, key: 'hosts.toml' } }, 'hosts.toml (with the credential) only by reference');

  // ACPI before CAPI wrote the kubeconfig: Success (the registry must not hold the Cluster back), saying
  // what is missing, and the Cluster marked for the background loop.
  const early = await call(h, 'AfterControlPlaneInitialized', lifecycleRequest('AfterControlPlaneInitialized', cluster));
  assert.match(await expectRetrying(mgmt(), early, ns, name), new RegExp(`^Secret ${ns}/${name}-kubeconfig \\(key value\\) not found`));
  assert.match((await ext.request('GET', '/metrics')).text, new RegExp(`capi_registry_addon_registry_deployed\\{namespace="${ns}",cluster="${name}"\\} 0`));

  await markControlPlaneInitialized(mgmt(), ns, name);
  await putKubeconfig(mgmt(), ns, name, readFileSync(env.workload!.kubeconfig, 'utf8'));
  // Two Nodes as their kubelets registered them, one after its script reported (node-mirror.test.ts runs
  // the report itself against the Node authorizer); no kubelet runs here.
  for (const [node, annotations] of [['w1', { 'capi-registry-addon.io/mirror': 'enabled' }], ['w2', {}]] as const) {
    const r = await env.workload!.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node, annotations } });
    assert.ok(r.status === 201 || r.status === 409, r.text);
  }
  const acpi = await call(h, 'AfterControlPlaneInitialized', lifecycleRequest('AfterControlPlaneInitialized', cluster));
  assert.is(acpi.status, 'Success', acpi.message);
  assert.match(acpi.message, /registry-tls issued \(/);

  const tls = await wsecret('registry-tls');
  const facts = opensslFacts(text(tls.data['tls.crt']), text(root.data['ca.crt']));
  assert.is(facts.verify, 'leaf.crt: OK', 'registry-tls verifies against the root, by openssl');
  assert.is(text(tls.data['ca.crt']), text(copy.data['ca.crt']), 'registry-tls ca.crt is the Cluster\'s issuer');
  assert.ok(facts.sans.includes(o.sanIp), `${o.sanIp} in ${facts.sans}`);
  assert.match(facts.sans, /DNS:registry\.capi-registry\.svc/);
  const notAfter = facts.notAfter / 1000;
  const metrics = (await ext.request('GET', '/metrics')).text;
  assert.ok(metrics.includes(`capi_registry_addon_registry_cert_expiry_timestamp_seconds{namespace="${ns}",cluster="${name}"} ${notAfter}`), `expiry gauge after ACPI: ${notAfter} in ${metrics.split('\n').filter((l) => l.includes('expiry')).join(' / ')}`);
  assert.match(metrics, new RegExp(`capi_registry_addon_cluster_hook_results_total\\{cluster="${ns}/${name}",hook="AfterControlPlaneInitialized",status="Success"\\} 2`));
  assert.match(metrics, new RegExp(`capi_registry_addon_registry_deployed\\{namespace="${ns}",cluster="${name}"\\} 1`));
  const marks = (await getCluster(mgmt(), ns, name)).metadata.annotations;
  assert.is(marks['capi-registry-addon.io/registry-status'], 'Deployed');
  assert.is(marks['capi-registry-addon.io/node-mirror'], 'enabled=1,not-enabled=0,unreported=1');
  assert.is(marks['capi-registry-addon.io/registry-credentials'], 'node,push');
  assert.match(metrics, new RegExp(`capi_registry_addon_node_mirror_nodes\\{namespace="${ns}",cluster="${name}",state="unreported"\\} 1`));
  assert.match(metrics, new RegExp(`capi_registry_addon_registry_credentials_generation\\{namespace="${ns}",cluster="${name}"\\} 1`));
  // Workload side: bcrypt entries that the independent bcryptjs accepts, the sync sidecars' copy of the node credential.
  const htpasswd = text((await wsecret('registry-auth')).data.htpasswd);
  const entry = (user: string) => htpasswd.split('\n').find((l) => l.startsWith(`${user}:`))!.slice(user.length + 1);
  assert.ok(bcryptjs.compareSync(creds.node, entry('node')) && bcryptjs.compareSync(creds.push, entry('push')), 'htpasswd verifies with bcryptjs');
  assert.equal([text((await wsecret('registry-regsync-auth')).data.username), text((await wsecret('registry-regsync-auth')).data.password)], ['node', creds.node]);
  const proxy = (await hcp(ns, name)).body;
  assert.equal(proxy.spec.tlsConfig.caSecret, { name: 'registry-addon-root-ca', namespace: o.provider }, 'CAAPH checks the chart server against the root');
  assert.equal(proxy.spec.clusterSelector, { matchLabels: { 'capi-registry-addon.io/helmchartproxy': `${name}-registry` } });
  assert.is((await getCluster(mgmt(), ns, name)).metadata.labels['capi-registry-addon.io/helmchartproxy'], `${name}-registry`, 'the proxy selects exactly its Cluster');
  assert.equal(proxy.metadata.ownerReferences.map((r: any) => r.uid), [cluster.metadata.uid]);
  assert.not.match(proxy.spec.valuesTemplate, /PRIVATE KEY|BEGIN CERTIFICATE/, 'no secret, no certificate in Helm values');
  const sts = JSON.parse(proxy.spec.valuesTemplate).manifests.find((m: any) => m.kind === 'StatefulSet');
  assert.is(sts.spec.template.metadata.annotations['capi-registry-addon/auth-sha256'], createHash('sha256').update(htpasswd).digest('hex'));
  assert.is(sts.spec.template.metadata.annotations['capi-registry-addon/tls-sha256'], createHash('sha256').update(text(tls.data['tls.crt'])).digest('hex'), 'pods roll when the certificate changes');
  // The source's login: in the workload Secret the writer's sidecar mounts (trailing newline dropped), nowhere else.
  const sourcesSecret = await wsecret('registry-sources');
  assert.equal([text(sourcesSecret.data['corp.username']), text(sourcesSecret.data['corp.password'])], ['mirror', corpPassword]);
  assert.is(sts.spec.template.metadata.annotations['capi-registry-addon/sources-sha256'].length, 64, 'a changed login rolls the pods');
  assert.is(marks['capi-registry-addon.io/sources'], 'corp: no pass reported yet', 'no kubelet here: no sidecar log yet');
  for (const [where, body] of Object.entries({ 'Helm values': proxy.spec.valuesTemplate, Cluster: JSON.stringify(await getCluster(mgmt(), ns, name)), 'extension log': ext.logs, metrics })) {
    assert.not.ok(body.includes(corpPassword), `the source password in the ${where}`);
  }

  // Repeated ACPI: the same objects, not one new write.
  const versions = async () => [(await hcp(ns, name)).body.metadata.resourceVersion, (await wsecret('registry-tls')).metadata.resourceVersion,
    (await wsecret('registry-http-secret')).metadata.resourceVersion, (await secret(ns, `${name}-registry-addon-ca`)).body.metadata.resourceVersion,
    (await getCluster(mgmt(), ns, name)).metadata.resourceVersion, (await wsecret('registry-auth')).metadata.resourceVersion,
    (await secret(ns, `${name}-registry-addon-node`)).body.metadata.resourceVersion, (await secret(ns, `${name}-registry-addon-push`)).body.metadata.resourceVersion];
  const first = await versions();
  for (let i = 0; i < 3; i++) assert.is((await call(h, 'AfterControlPlaneInitialized', lifecycleRequest('AfterControlPlaneInitialized', cluster))).status, 'Success');
  assert.equal(await versions(), first, 'idempotent: resourceVersions unchanged');

  // BCU: a fresh certificate for the upgrade (the pods roll to it), once: a retried BCU for the same version writes nothing.
  // The version is the Cluster's own (CAPI sends spec.topology.version); the user bumped it.
  const bump = async (version: string) => ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}`, JSON.stringify({ spec: { topology: { version } } }), 'application/merge-patch+json'), 'version bump');
  await bump('v1.34.0');
  // The CA copy swapped for another CA by whoever can write Secrets in the namespace (not a move: the
  // registry is served by the Cluster's own issuer): no rollover, and the message says only what happened.
  const copyBefore = (await secret(ns, `${name}-registry-addon-ca`)).body;
  const swappedIn = makeCa(`swapped-${name}-${o.provider}`);
  ok(await mgmt().request('PATCH', `/api/v1/namespaces/${ns}/secrets/${name}-registry-addon-ca`, JSON.stringify({ data: { 'ca.crt': b64(swappedIn.pem) } }), 'application/merge-patch+json'), 'swapped copy');
  const bcu = await call(h, 'BeforeClusterUpgrade', lifecycleRequest('BeforeClusterUpgrade', cluster));
  assert.equal([bcu.status, bcu.retryAfterSeconds], ['Success', 0], bcu.message);
  assert.match(bcu.message, /^registry-tls issued \(upgrade to v1\.34\.0: a fresh certificate for every upgrade\); HelmChartProxy .* applied$/);
  assert.is(text((await secret(ns, `${name}-registry-addon-ca`)).body.data['ca.crt']), text(copyBefore.data['ca.crt']), 'the copy trusts the Cluster\'s issuer again, and only it');
  const renewed = await wsecret('registry-tls');
  assert.is.not(text(renewed.data['tls.crt']), text(tls.data['tls.crt']), 'a new certificate');
  assert.is(JSON.parse((await hcp(ns, name)).body.spec.valuesTemplate).manifests.find((m: any) => m.kind === 'StatefulSet').spec.template.metadata.annotations['capi-registry-addon/tls-sha256'],
    createHash('sha256').update(text(renewed.data['tls.crt'])).digest('hex'), 'the pods roll to it');
  assert.is((await getCluster(mgmt(), ns, name)).metadata.annotations['capi-registry-addon.io/registry-cert-upgrade'], 'v1.34.0');
  const before = await versions();
  const retried = await call(h, 'BeforeClusterUpgrade', lifecycleRequest('BeforeClusterUpgrade', cluster));
  assert.equal([retried.status, retried.message], ['Success', `HelmChartProxy ${ns}/${name}-registry unchanged`]);
  assert.equal(await versions(), before, 'a retried BCU for the same upgrade: resourceVersions unchanged');

  // The root replaced by one with another key while the Cluster's issuer stays (a move is move.test.ts):
  // the upgrade is not held back, nothing is re-issued, and the Cluster says what to do.
  await bump('v1.35.0');
  await putRoot(o.provider, await mintRootCa({ now: new Date() }));
  const rekeyed = await call(h, 'BeforeClusterUpgrade', lifecycleRequest('BeforeClusterUpgrade', cluster, { toKubernetesVersion: 'v1.35.0' }));
  assert.match(await expectRetrying(mgmt(), rekeyed, ns, name), /registry-addon-issuer-[0-9a-f]{20} was not issued by Secret .*registry-addon-root-ca \(the root was replaced with another key\?\): put that root back, or delete/);
  const others = (v: string[]) => v.filter((_, i) => i !== 4);
  assert.equal(others(await versions()), others(before), 'a re-keyed root writes nothing but the Cluster\'s status mark');
  await putRoot(o.provider, { 'tls.crt': text(root.data['tls.crt']), 'tls.key': text(root.data['tls.key']), 'ca.crt': text(root.data['ca.crt']) });
  assert.is((await call(h, 'BeforeClusterUpgrade', lifecycleRequest('BeforeClusterUpgrade', cluster, { toKubernetesVersion: 'v1.35.0' }))).status, 'Success');
  assert.is((await getCluster(mgmt(), ns, name)).metadata.annotations['capi-registry-addon.io/registry-status'], 'Deployed');

  // cert-manager renews the 10-year root before expiry with the same key (rotationPolicy: Never): a new
  // PEM, the same identity. Nothing is refused or re-keyed: BCU green, the nodes' CA copy unchanged.
  const dir = workDir('pki', `renewed-root-${name}`);
  writeFileSync(join(dir, 'root.crt'), text(root.data['tls.crt']));
  writeFileSync(join(dir, 'root.key'), text(root.data['tls.key']));
  openssl(['x509', '-in', 'root.crt', '-signkey', 'root.key', '-set_serial', '0x2a2a2a', '-days', '3650', '-out', 'renewed.crt'], dir);
  const renewedRoot = readFileSync(join(dir, 'renewed.crt'), 'utf8');
  assert.is.not(renewedRoot, text(root.data['tls.crt']));
  const caCopy = (await secret(ns, `${name}-registry-addon-ca`)).body;
  // A root that allows intermediates signs the Cluster's issuer, and the nodes trust that; an old
  // pathLen-0 root is trusted directly, and its copy then follows the new PEM (same key: old nodes still verify).
  const copyIsIssuer = text(caCopy.data['ca.crt']).trim() !== text(root.data['tls.crt']).trim();
  await putRoot(o.provider, { 'tls.crt': renewedRoot, 'tls.key': text(root.data['tls.key']), 'ca.crt': renewedRoot });
  try {
    for (const hook of ['AfterControlPlaneInitialized', 'BeforeClusterUpgrade'] as const) {
      const r = await call(h, hook, lifecycleRequest(hook, cluster, hook === 'BeforeClusterUpgrade' ? { toKubernetesVersion: 'v1.35.0' } : {}));
      assert.equal([r.status, r.message], ['Success', `HelmChartProxy ${ns}/${name}-registry unchanged`], `${hook} after a same-key root renewal`);
    }
    if (copyIsIssuer) assert.is((await secret(ns, `${name}-registry-addon-ca`)).body.metadata.resourceVersion, caCopy.metadata.resourceVersion, 'the nodes\' CA copy is unchanged');
  } finally {
    await putRoot(o.provider, { 'tls.crt': text(root.data['tls.crt']), 'tls.key': text(root.data['tls.key']), 'ca.crt': text(root.data['ca.crt']) });
  }

  // No credential anywhere it must not be: hook answers (GeneratePatches included), Helm values, Events, logs.
  const events = (await mgmt().request('GET', `/api/v1/namespaces/${ns}/events`)).text;
  for (const [where, haystack] of [['hook answers', h.answers.join('\n')], ['HelmChartProxy', JSON.stringify((await hcp(ns, name)).body)], ['Events', events], ['extension logs', ext.logs]] as const) {
    for (const needle of [creds.node, creds.push, b64(`node:${creds.node}`), b64(`push:${creds.push}`), b64(creds.node), b64(creds.push)]) {
      assert.not.ok(haystack.includes(needle), `a credential leaked into ${where}`);
    }
  }

  // Delete (the Cluster now has a deletionTimestamp): the proxy, the copy, the credentials and the issuer go; a repeat is still Success.
  const deleting = await startDeleting(mgmt(), ns, name);
  for (let i = 0; i < 2; i++) {
    const del = await call(h, 'BeforeClusterDelete', lifecycleRequest('BeforeClusterDelete', deleting));
    assert.equal([del.status, del.retryAfterSeconds], ['Success', 0], del.message);
  }
  assert.is((await hcp(ns, name)).status, 404);
  for (const suffix of ['ca', 'node', 'push']) assert.is((await secret(ns, `${name}-registry-addon-${suffix}`)).status, 404, suffix);
  assert.is((await secret(o.provider, issuerName)).status, 404, 'the issuer');
}

async function prepareRoot(h: Hooks, provider: string, ca: CaKind, ns: string) {
  if (ca === 'minted') return;
  const probe = await createCluster(mgmt(), ns, 'probe', { services: ['10.96.0.0/12'], registry: {} });
  // Not there yet (cert-manager still issuing): Success that holds creation back and says what is missing.
  const waiting = await call(h, 'BeforeClusterCreate', lifecycleRequest('BeforeClusterCreate', probe));
  assert.equal([waiting.status, waiting.retryAfterSeconds], ['Success', 30]);
  assert.match(waiting.message, new RegExp(`root CA Secret ${provider}/registry-addon-root-ca not found: install cert-manager`));
  await putRoot(provider, certManagerRoot(ca === 'cert-manager-rsa' ? 'rsa' : 'ec'));
}

const CAS: CaKind[] = ['minted', 'cert-manager-rsa', 'cert-manager-ecdsa'];
// One test per runtime and root: each starts its own extension on its own provider namespace and Clusters.
for (const runtime of Object.keys(RUNTIMES)) {
  for (const ca of CAS) {
    test(`${runtime}, ${ca} root: not opted in, then IPv4 and IPv6 Clusters through BCC, GeneratePatches, ACPI, BCU, re-keyed root, delete`, async () => {
      const provider = `p-${runtime}-${ca}`;
      const ns = `t-${runtime}-${ca}`;
      await bindProviderNamespace(mgmt(), 'capi-registry-addon', provider);
      const ext = await startExtension(runtime, { args: ['--no-seed', '--kubeconfig', kubeconfig, '--log-level', 'debug', '--capi-version', 'v1.13', '--provider-namespace', provider, ...(ca === 'minted' ? ['--mint-root-ca'] : [])] });
      const h = hooksOf(ext);
      try {
        // Not opted in: Success on every hook and nothing written.
        const plain = await createCluster(mgmt(), ns, 'plain', { services: ['10.96.0.0/12'] });
        for (const hook of ['BeforeClusterCreate', 'AfterControlPlaneInitialized', 'BeforeClusterUpgrade', 'BeforeClusterDelete'] as const) {
          const r = await call(h, hook, lifecycleRequest(hook, plain));
          assert.equal([r.status, r.message], ['Success', undefined], hook);
        }
        assert.equal((await call(h, 'GeneratePatches', generatePatchesRequest(ns, 'plain', { services: ['10.96.0.0/12'] }))).items, []);
        assert.is((await secret(ns, 'plain-registry-addon-ca')).status, 404);
        assert.is((await hcp(ns, 'plain')).status, 404);

        await prepareRoot(h, provider, ca, ns);
        await clusterLifecycle(h, { ns, provider, name: 'v4', services: ['10.96.0.0/12'], serviceIp: '10.96.0.20', sanIp: 'IP Address:10.96.0.20' });
        await clusterLifecycle(h, { ns, provider, name: 'v6', services: ['fd00:10:96::/108'], serviceIp: 'fd00:10:96::14', sanIp: 'IP Address:FD00:10:96:0:0:0:0:14' });
      } finally {
        await ext.stop();
      }
    });
  }
}

for (const runtime of Object.keys(RUNTIMES)) {
  test(`${runtime}: day 2: a Cluster that opts in after creation converges from GeneratePatches alone (no BCC, no ACPI); the expiry gauge survives a restart`, async () => {
    const provider = `p-day2-${runtime}`;
    await bindProviderNamespace(mgmt(), 'capi-registry-addon', provider);
    const ext = await startExtension(runtime, { args: ['--no-seed', '--kubeconfig', kubeconfig, '--capi-version', 'v1.13', '--provider-namespace', provider, '--mint-root-ca', '--converge-interval', '1'] });
    const h = hooksOf(ext);
    try {
      const ns = `day2-${runtime}`;
      const created = await createCluster(mgmt(), ns, 'late', { services: ['10.96.0.0/12'] });
      assert.is((await call(h, 'AfterControlPlaneInitialized', lifecycleRequest('AfterControlPlaneInitialized', created))).status, 'Success');
      await markControlPlaneInitialized(mgmt(), ns, 'late');
      await putKubeconfig(mgmt(), ns, 'late', readFileSync(env.workload!.kubeconfig, 'utf8'));
      assert.is((await hcp(ns, 'late')).status, 404);
      // The user adds the variable; CAPI's next topology reconcile calls GeneratePatches.
      ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/late`, JSON.stringify({ spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } } }), 'application/merge-patch+json'), 'opt in');
      const gp = await call(h, 'GeneratePatches', generatePatchesRequest(ns, 'late', { services: ['10.96.0.0/12'], registry: {} }));
      assert.is(gp.items.length, 2);
      const proxy = await waitFor('the day-2 HelmChartProxy', async () => ((await hcp(ns, 'late')).status === 200 ? (await hcp(ns, 'late')).body : undefined), 20_000);
      assert.is(proxy.spec.chartName, 'capi-registry-addon-registry');
      assert.is((await secret(ns, 'late-registry-addon-ca')).status, 200, 'the CA copy the nodes read');
      assert.ok(await wsecret('registry-tls'));
    } finally {
      await ext.stop();
    }
    // The expiry gauge is kept on the Cluster, not in memory: a fresh process reports it at once.
    const restarted = await startExtension(runtime, { args: ['--no-seed', '--kubeconfig', kubeconfig, '--capi-version', 'v1.13', '--provider-namespace', provider] });
    try {
      const metrics = (await restarted.request('GET', '/metrics')).text;
      const annotation = (await getCluster(mgmt(), `day2-${runtime}`, 'late')).metadata.annotations['capi-registry-addon.io/registry-cert-not-after'];
      assert.ok(metrics.includes(`capi_registry_addon_registry_cert_expiry_timestamp_seconds{namespace="day2-${runtime}",cluster="late"} ${Date.parse(annotation) / 1000}`), metrics);
    } finally {
      await restarted.stop();
    }
  });
}

test('credential rotation through the Cluster annotation: new pair, the replaced one still valid on the real Distribution until the next rotation', async () => {
  const provider = 'p-rotate';
  await bindProviderNamespace(mgmt(), 'capi-registry-addon', provider);
  const ext = await startExtension('deno', { args: ['--no-seed', '--kubeconfig', kubeconfig, '--capi-version', 'v1.13', '--provider-namespace', provider, '--mint-root-ca'] });
  const h = hooksOf(ext);
  try {
    const ns = 'rotate';
    await createCluster(mgmt(), ns, 'r1', { services: ['10.96.0.0/12'], registry: {} });
    await markControlPlaneInitialized(mgmt(), ns, 'r1');
    await putKubeconfig(mgmt(), ns, 'r1', readFileSync(env.workload!.kubeconfig, 'utf8'));
    const hook = async (name: 'AfterControlPlaneInitialized' | 'BeforeClusterUpgrade') => {
      const r = await call(h, name, lifecycleRequest(name, await getCluster(mgmt(), ns, 'r1')));
      assert.is(r.status, 'Success', r.message);
    };
    const stored = async (suffix: string): Promise<Record<string, string>> => Object.fromEntries(Object.entries((await secret(ns, `r1-registry-addon-${suffix}`)).body.data).map(([k, v]) => [k, text(v as string)]));
    const authSha = async () => JSON.parse((await hcp(ns, 'r1')).body.spec.valuesTemplate).manifests.find((m: any) => m.kind === 'StatefulSet').spec.template.metadata.annotations['capi-registry-addon/auth-sha256'];
    await hook('AfterControlPlaneInitialized');
    const first = { node: await stored('node'), push: await stored('push') };
    const sha1 = await authSha();
    const rotate = (value: string) => mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/r1`,
      JSON.stringify({ metadata: { annotations: { 'capi-registry-addon.io/rotate-credentials': value } } }), 'application/merge-patch+json');

    ok(await rotate('2026-11-26'), 'annotate');
    await hook('BeforeClusterUpgrade');
    const second = { node: await stored('node'), push: await stored('push') };
    assert.equal([second.node.username, second.node['previous-username'], second.push.username, second.push['previous-username']], ['node-2', 'node', 'push-2', 'push']);
    assert.is(second.node['previous-password'], first.node.password);
    assert.is.not(second.node.password, first.node.password);
    assert.ok(second.node['hosts.toml']!.includes(b64(`node-2:${second.node.password}`)), 'new nodes get the new header');
    assert.is.not(await authSha(), sha1, 'the registry pods roll onto the new htpasswd');
    await hook('BeforeClusterUpgrade');
    assert.equal({ node: await stored('node'), push: await stored('push') }, second, 'the same annotation rotates once');

    // The workload's htpasswd on the real Distribution: old and new node credentials both pull.
    const htpasswd = text((await wsecret('registry-auth')).data.htpasswd);
    assert.equal(htpasswd.split('\n').filter(Boolean).map((l) => l.split(':')[0]), ['node-2', 'push-2', 'node', 'push']);
    const serve = async (file: string) => {
      const leaf = makeLeaf(env.registryCa, `rotation-${Math.random().toString(36).slice(2, 7)}`, { sans: ['IP:127.0.0.1'] });
      const dir = workDir('rotation');
      writeFileSync(join(dir, 'htpasswd'), file);
      return startRegistry(`rotation-${Math.random().toString(36).slice(2, 7)}`, { certFile: leaf.certFile, keyFile: leaf.keyFile, ca: env.registryCa.pem }, {
        config: (addr, data) => `version: 0.1\nstorage: {filesystem: {rootdirectory: ${data}}}\nhttp: {addr: "${addr}", secret: s, tls: {certificate: ${leaf.certFile}, key: ${leaf.keyFile}}}\nauth: {htpasswd: {realm: r, path: ${join(dir, 'htpasswd')}}}\n`,
      });
    };
    const basic = (u: string, p: string | undefined) => `Basic ${b64(`${u}:${p}`)}`;
    const registry = await serve(htpasswd);
    const image = makeImage('rotation');
    await registry.push('app', 'v1', image, basic('push-2', second.push.password));
    for (const [u, p] of [['node', first.node.password!], ['node-2', second.node.password!]] as const) assert.is((await registry.manifest('app', 'v1', basic(u, p))).status, 200, u);
    await registry.stop();

    // The next rotation retires the first pair.
    ok(await rotate('2026-12-01'), 'annotate again');
    await hook('BeforeClusterUpgrade');
    const third = await stored('node');
    assert.equal([third.username, third['previous-username']], ['node-3', 'node-2']);
    const after = await serve(text((await wsecret('registry-auth')).data.htpasswd));
    await after.push('app', 'v1', image, basic('push-3', (await stored('push')).password));
    assert.is((await after.manifest('app', 'v1', basic('node', first.node.password))).status, 401, 'the first node credential is retired');
    assert.is((await after.manifest('app', 'v1', basic('node-2', second.node.password))).status, 200, 'the previous one still pulls');
    await after.stop();
  } finally {
    await ext.stop();
  }
});

test.run();
