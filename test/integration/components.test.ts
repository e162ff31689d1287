// Smoke suite: every real component of the test environment is there and usable.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { workDir } from './env/base.ts';
import { components, componentsCache, loadComponents } from './env/components.ts';
import { startEnv, type Env } from './env/index.ts';
import { makeImage } from './env/oci.ts';
import { SyncSidecar } from './env/regbot.ts';

const test = realSuite('real components');
let env: Env;

test.before(async () => {
  env = await startEnv({ management: true, workload: true, registries: 2 });
});
test.after(async () => {
  await env?.stop();
});

test('both API servers answer /version and round-trip a Secret', async () => {
  for (const api of [env.management!, env.workload!]) {
    const version = await api.request('GET', '/version');
    assert.is(version.body.gitVersion, components().kubeApiserver.version, api.name);
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'smoke' }, type: 'Opaque', data: { k: Buffer.from('v\u0000\u00ff').toString('base64') } };
    assert.is((await api.request('POST', '/api/v1/namespaces/default/secrets', secret)).status, 201);
    const back = await api.request('GET', '/api/v1/namespaces/default/secrets/smoke');
    assert.is(back.body.data.k, secret.data.k);
    assert.is((await api.request('DELETE', '/api/v1/namespaces/default/secrets/smoke')).status, 200);
  }
  // Two isolated clusters: what one holds, the other does not.
  await env.management!.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'only-in-management' } });
  assert.is((await env.workload!.request('GET', '/api/v1/namespaces/only-in-management')).status, 404);
});

test('CAPI, CAAPH and cert-manager CRDs from their modules are Established, accept valid objects and reject invalid ones', async () => {
  const api = env.management!;
  for (const crd of ['clusters.cluster.x-k8s.io', 'kubeadmcontrolplanetemplates.controlplane.cluster.x-k8s.io', 'kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io',
    'extensionconfigs.runtime.cluster.x-k8s.io', 'helmchartproxies.addons.cluster.x-k8s.io', 'helmreleaseproxies.addons.cluster.x-k8s.io',
    'certificates.cert-manager.io', 'issuers.cert-manager.io']) {
    assert.ok(env.crds.includes(crd), `${crd} installed`);
  }
  const create = (path: string, body: unknown) => api.request('POST', `${path}?dryRun=All`, body);
  const cluster = (topology: Record<string, unknown>) => ({
    apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name: 'c1', namespace: 'default' },
    spec: { clusterNetwork: { services: { cidrBlocks: ['10.128.0.0/12'] } }, topology },
  });
  const clusters = '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters';
  assert.is((await create(clusters, cluster({ classRef: { name: 'quick-start' }, version: 'v1.33.1' }))).status, 201);
  const badCluster = await create(clusters, cluster({ classRef: { name: 'quick-start' } }));
  assert.is(badCluster.status, 422, badCluster.text);
  assert.match(badCluster.text, /spec\.topology\.version/);

  const hcps = '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies';
  const hcp = (spec: Record<string, unknown>) => ({ apiVersion: 'addons.cluster.x-k8s.io/v1alpha1', kind: 'HelmChartProxy', metadata: { name: 'h1', namespace: 'default' }, spec });
  assert.is((await create(hcps, hcp({ clusterSelector: {}, chartName: 'registry', repoURL: 'oci://127.0.0.1:9443/charts' }))).status, 201);
  const badHcp = await create(hcps, hcp({ clusterSelector: {}, repoURL: 'oci://127.0.0.1:9443/charts' }));
  assert.is(badHcp.status, 422, badHcp.text);
  assert.match(badHcp.text, /chartName/);

  const certs = '/apis/cert-manager.io/v1/namespaces/default/certificates';
  const cert = (spec: Record<string, unknown>) => ({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'ca', namespace: 'default' }, spec });
  assert.is((await create(certs, cert({ secretName: 'registry-addon-root-ca', isCA: true, commonName: 'ca', issuerRef: { name: 'selfsigned' } }))).status, 201);
  const badCert = await create(certs, cert({ isCA: true, issuerRef: { name: 'selfsigned' } }));
  assert.is(badCert.status, 422, badCert.text);
  assert.match(badCert.text, /secretName/);
});

test('Distribution: push a tiny image, pull it back by digest', async () => {
  const [r0] = env.registries;
  const image = makeImage('smoke push');
  const digest = await r0!.push('smoke/hello', 'v1', image);
  assert.is(digest, image.manifest.digest);
  const pulled = await r0!.manifest('smoke/hello', digest);
  assert.is(pulled.status, 200);
  assert.is(pulled.digest, digest);
  assert.ok(pulled.bytes.equals(image.manifest.bytes));
});

test('regbot once runs a copy script between two TLS registries, trusting only the CA', async () => {
  const [r0, r1] = env.registries;
  const image = makeImage('smoke regbot');
  await r0!.push('sync/hello', 'v1', image);
  assert.is((await r1!.manifest('sync/hello', 'v1')).status, 404);
  const config = [
    'version: 1',
    'creds:',
    ...[r0!, r1!].map((r) => `  - registry: ${r.host}\n    tls: enabled\n    regcert: '{{ file "/etc/regbot/ca/ca.crt" }}'`),
    'scripts:',
    '  - name: copy',
    '    script: |',
    `      image.copy(reference.new("${r0!.host}/sync/hello:v1"), reference.new("${r1!.host}/sync/hello:v1"))`,
  ].join('\n');
  const run = new SyncSidecar('smoke', { config: { 'smoke.yml': config }, ca: env.registryCa.pem, hosts: {} }).once('smoke.yml');
  assert.ok(run.ok, run.output);
  const copied = await r1!.manifest('sync/hello', 'v1');
  assert.is(copied.digest, image.manifest.digest);
});

test('a missing component fails the run with its name and the command that brings it', () => {
  const empty = workDir('components-missing');
  assert.throws(() => loadComponents(empty), /real components are missing \(.*components\.json\): run 'bash scripts\/components\.sh'/);
  const broken = JSON.parse(readFileSync(join(componentsCache(), 'components.json'), 'utf8'));
  broken.regbot.path = join(empty, 'regbot-v0');
  writeFileSync(join(empty, 'components.json'), JSON.stringify(broken));
  assert.throws(() => loadComponents(empty), /component regbot v\S+ is missing at .*regbot-v0: run 'bash scripts\/components\.sh'/);
});

test.run();
