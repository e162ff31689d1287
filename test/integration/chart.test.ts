// The chart the extension serves, pulled over OCI by the real Helm client trusting only our CA, and
// rendered by `helm template` with our values into exactly the manifests src/render produces.
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan } from '../../src/addon/plan.ts';
import { CHART, chartManifests, helmValuesTemplate } from '../../src/render/chart.ts';
import { dumpYaml } from '../../src/render/distribution.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { makePki, RUNTIMES, startExtension } from './env/extension.ts';

const test = suite('chart over OCI with the real Helm client');
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
    // CAAPH evaluates the values template first; our escaping must leave the data itself unchanged.
    const template = helmValuesTemplate(manifests);
    assert.not.match(template.replaceAll('{{ "{{" }}', ''), /\{\{/, 'every {{ is escaped');
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

test.run();
