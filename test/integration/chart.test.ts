// The chart the extension serves, pulled over OCI by the real Helm client trusting only our CA, and
// rendered by `helm template` with our values into exactly the manifests src/render produces.
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan } from '../../src/addon/plan.ts';
import { CHART, chartManifests, helmValuesTemplate } from '../../src/render/chart.ts';
import { helmChartProxy, helmChartProxyName } from '../../src/render/helmchartproxy.ts';
import { dumpYaml } from '../../src/render/distribution.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { makePki, RUNTIMES, startExtension } from './env/extension.ts';
import { startEnv } from './env/index.ts';

const test = realSuite('chart over OCI with the real Helm client');
const pki = makePki('chart-server');
const version = JSON.parse(spawnSync('cat', ['package.json'], { encoding: 'utf8' }).stdout).version as string;

function helm(args: string[], home: string) {
  return spawnSync(components().helm.path, args, {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: home, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') },
  });
}

test('helm pulls the chart from the extension on every runtime, trusting only the CA', async () => {
  for (const runtime of Object.keys(RUNTIMES)) {
    const ext = await startExtension(runtime, { pki });
    const home = workDir('helm', runtime);
    const pulled = helm(['pull', `oci://127.0.0.1:${ext.port}/charts/${CHART.name}`, '--version', version, '--ca-file', pki.caFile, '--destination', home], home);
    assert.is(pulled.status, 0, `${runtime}: ${pulled.stderr}`);
    assert.ok(readdirSync(home).includes(`${CHART.name}-${version}.tgz`), runtime);
    // Without the CA the same pull fails TLS verification.
    const untrusted = helm(['pull', `oci://127.0.0.1:${ext.port}/charts/${CHART.name}`, '--version', version, '--destination', join(home, 'x')], home);
    assert.not.equal(untrusted.status, 0);
    assert.match(untrusted.stderr, /certificate/);
    await ext.stop();
  }
});

test('`helm template` with our values renders exactly the rendered workload manifests (1, 2, 3 replicas)', async () => {
  const home = workDir('helm', 'node');
  const chartFile = join(home, `${CHART.name}-${version}.tgz`);
  for (const replicas of [1, 2, 3]) {
    const parsed = parseCluster({ metadata: { name: 'c1', namespace: 'default' }, spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: { replicas } } } }] } } });
    assert.ok(parsed.ok);
    if (!parsed.ok) return;
    const plan = await registryPlan(parsed.value, clusterRegistry(parsed.value)!);
    const manifests = chartManifests(plan.workload);
    // CAAPH evaluates the values template first: no `{{` may reach it, and the JSON decodes back to our data.
    const template = helmValuesTemplate(manifests);
    assert.not.match(template, /\{\{/, 'every {{ is escaped');
    assert.equal(JSON.parse(template).manifests, manifests);
    if (replicas > 1) assert.match(template, /\{\\u007b file/, 'regbot templates are carried escaped');
    const valuesFile = join(home, `values-${replicas}.yaml`);
    writeFileSync(valuesFile, dumpYaml({ manifests }));
    const out = helm(['template', 'registry', chartFile, '--namespace', 'capi-registry', '-f', valuesFile], home);
    assert.is(out.status, 0, out.stderr);
    // Helm emits documents in its install order (by kind); compare them keyed by kind and name.
    const key = (o: any) => `${o.kind}/${o.metadata.name}`;
    const byKey = (objs: any[]) => Object.fromEntries(objs.map((o) => [key(o), o]));
    const docs = yaml.loadAll(out.stdout).filter((d) => d !== null && d !== undefined) as any[];
    assert.is(docs.length, manifests.length, `${replicas} replicas`);
    assert.equal(byKey(docs), byKey(manifests as any[]), `${replicas} replicas`);
  }
});

test('the HelmChartProxy passes strict server-side dry-run against the CAAPH CRD, selects exactly its Cluster, and holds no secret', async () => {
  const env = await startEnv({ management: true });
  const parsed = parseCluster({ metadata: { name: 'c1', namespace: 'default', uid: 'u1' }, spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } } });
  assert.ok(parsed.ok);
  if (!parsed.ok) return;
  const plan = await registryPlan(parsed.value, clusterRegistry(parsed.value)!);
  const hcp = helmChartProxy({
    cluster: { name: 'c1', namespace: 'default', uid: 'u1', apiVersion: 'cluster.x-k8s.io/v1beta2' },
    chart: { repoUrl: 'oci://capi-registry-addon.capi-registry-addon-system.svc:443/charts', version, caSecret: { name: 'c1-registry-addon-ca', namespace: 'default' } },
    workload: plan.workload,
  }) as any;
  const r = await env.management!.request('POST', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies?dryRun=All&fieldValidation=Strict', hcp);
  assert.is(r.status, 201, r.text);
  assert.equal(r.body.spec.clusterSelector, { matchLabels: { 'capi-registry-addon.io/helmchartproxy': 'c1-registry' } });
  assert.is(r.body.spec.repoURL, 'oci://capi-registry-addon.capi-registry-addon-system.svc:443/charts');
  assert.not.match(hcp.spec.valuesTemplate, /BEGIN|PRIVATE KEY/);
  assert.not.ok(JSON.parse(hcp.spec.valuesTemplate).manifests.some((m: any) => m.kind === 'Secret' || m.kind === 'Namespace'), 'no Secret (and no Namespace) goes through Helm');
  assert.is(helmChartProxyName('c1'), 'c1-registry');
  const long = 'a'.repeat(63);
  assert.ok(helmChartProxyName(long).length <= 63);
  assert.is(helmChartProxyName(long), helmChartProxyName(long), 'stable');
  await env?.stop();
});

test.run();
