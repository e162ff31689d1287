// The real CAAPH controller (built from sigs.k8s.io/cluster-api-addon-provider-helm) reconciles our
// HelmChartProxy on the management API server: it pulls the chart from the extension over OCI (TLS
// with our CA) and installs the release into the workload API server.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan } from '../../src/addon/plan.ts';
import { chartManifests } from '../../src/render/chart.ts';
import { helmChartProxy } from '../../src/render/helmchartproxy.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { freePort, startProcess, waitFor } from './env/base.ts';
import { components } from './env/components.ts';
import { makePki, startExtension } from './env/extension.ts';
import { startEnv } from './env/index.ts';

const test = suite('real CAAPH installs the registry chart');

test('HelmChartProxy → CAAPH → Helm release on the workload cluster with exactly the rendered objects', async () => {
  const env = await startEnv({ management: true, workload: true, workloadServiceCidr: '10.96.0.0/12' });
  const mgmt = env.management!;
  const pki = makePki('caaph-chart-server');
  const ext = await startExtension('node', { pki });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const ok = (r: { status: number; text: string }, what: string) => assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.text.slice(0, 300)}`);

  const registry = { replicas: 2 };
  const cluster = await mgmt.request('POST', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters', {
    apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name: 'c1', namespace: 'default', labels: { 'cluster.x-k8s.io/cluster-name': 'c1' } },
    spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { classRef: { name: 'quick-start' }, version: 'v1.33.1', variables: [{ name: 'clusterConfig', value: { addons: { registry } } }] } },
  });
  ok(cluster, 'Cluster');
  // What CAPI's controllers would have written: the control plane is initialized, and the kubeconfig Secret.
  ok(await mgmt.request('PATCH', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1/status', JSON.stringify({
    status: { initialization: { infrastructureProvisioned: true, controlPlaneInitialized: true },
      conditions: [{ type: 'ControlPlaneInitialized', status: 'True', reason: 'Initialized', message: '', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] },
  }), 'application/merge-patch+json'), 'Cluster status');
  ok(await mgmt.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'c1-kubeconfig', labels: { 'cluster.x-k8s.io/cluster-name': 'c1' } },
    type: 'cluster.x-k8s.io/secret', data: { value: b64(readFileSync(env.workload!.kubeconfig, 'utf8')) } }), 'kubeconfig Secret');
  ok(await mgmt.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'chart-server-ca' }, data: { 'ca.crt': b64(pki.ca) } }), 'CA Secret');
  // The hook creates the namespace before CAAPH installs into it.
  ok(await env.workload!.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'capi-registry' } }), 'namespace');

  const parsed = parseCluster(cluster.body);
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  const plan = await registryPlan(parsed.value, clusterRegistry(parsed.value)!);
  const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
  const hcp = helmChartProxy({
    cluster: { name: 'c1', namespace: 'default', uid: cluster.body.metadata.uid, apiVersion: 'cluster.x-k8s.io/v1beta2' },
    endpoint: { service: { name: 'capi-registry-addon', namespace: 'default', port: 443 }, caSecret: { name: 'chart-server-ca', namespace: 'default' } },
    chartVersion: version,
    workload: plan.workload,
  }) as any;
  // No cluster DNS here: CAAPH reaches the extension's Service at its loopback address instead.
  hcp.spec.repoURL = `oci://127.0.0.1:${ext.port}/charts`;
  ok(await mgmt.request('POST', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies', hcp), 'HelmChartProxy');

  // CAAPH's webhook server must start (it needs a certificate), though no webhook configuration points
  // at it here: the API server applies the CRD schema defaults instead.
  const webhookDir = dirname(makePki('caaph-webhook').certFile);
  const caaph = startProcess('caaph', components().caaph.path, [
    `--kubeconfig=${mgmt.kubeconfig}`, '--leader-elect=false', `--health-addr=127.0.0.1:${await freePort()}`,
    `--diagnostics-address=127.0.0.1:${await freePort()}`, '--insecure-diagnostics', `--webhook-port=${await freePort()}`, `--webhook-cert-dir=${webhookDir}`,
    '--sync-period=30s', '--v=2',
  ], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } });

  const expected = chartManifests(plan.workload) as any[];
  const paths: Record<string, string> = {
    ServiceAccount: 'api/v1/namespaces/capi-registry/serviceaccounts', ConfigMap: 'api/v1/namespaces/capi-registry/configmaps', Service: 'api/v1/namespaces/capi-registry/services',
    StatefulSet: 'apis/apps/v1/namespaces/capi-registry/statefulsets', PodDisruptionBudget: 'apis/policy/v1/namespaces/capi-registry/poddisruptionbudgets',
  };
  await waitFor('the Helm release on the workload cluster', async () => {
    if (caaph.proc.exitCode !== null) throw new Error(`CAAPH exited ${caaph.proc.exitCode}`);
    const sts = await env.workload!.request('GET', '/apis/apps/v1/namespaces/capi-registry/statefulsets/registry');
    return sts.status === 200 ? true : undefined;
  }, 120_000, caaph.logFile);
  for (const obj of expected) {
    const got = await env.workload!.request('GET', `/${paths[obj.kind]}/${obj.metadata.name}`);
    assert.is(got.status, 200, `${obj.kind}/${obj.metadata.name}`);
    assert.is(got.body.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
    if (obj.kind === 'ConfigMap') assert.equal(got.body.data, obj.data, `${obj.metadata.name}: data byte for byte, {{ }} intact through CAAPH`);
    if (obj.kind === 'StatefulSet') {
      assert.equal(got.body.spec.template.metadata.annotations, obj.spec.template.metadata.annotations);
      assert.equal(got.body.spec.template.spec.containers.map((c: any) => [c.name, c.image, c.args]), obj.spec.template.spec.containers.map((c: any) => [c.name, c.image, c.args]));
    }
    if (obj.kind === 'Service' && obj.spec.clusterIP !== 'None') assert.is(got.body.spec.clusterIP, '10.96.0.20');
  }
  const regsync = (await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/configmaps/registry-regsync')).body;
  assert.match(regsync.data['registry-0.yml'], /regcert: '\{\{ file "\/etc\/regsync\/ca\/ca\.crt" \}\}'/);
  await caaph.stop();
  await ext.stop();
  await env.stop();
});

test.run();
