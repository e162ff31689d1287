// The renderers' output used verbatim by the real consumers: the workload kube-apiserver (server-side
// dry-run), Distribution 3.x and 2.8. containerd on nodes: node-mirror.test.ts; the replicas' sync
// sidecar (regbot) with containerd: replica-data.test.ts.
import { readFileSync } from 'node:fs';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan, type RegistryPlan } from '../../src/addon/plan.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { issueServerCertificate } from '../../src/pki/server-cert.ts';
import { basicAuthorization, htpasswdFor, newPassword, type Credentials } from '../../src/addon/credentials.ts';
import { RenderError, serverCertSans } from '../../src/render/metadata.ts';
import { readRegistryConfig } from '../../src/render/config.ts';
import { hostsToml } from '../../src/render/node-files.ts';
import { clusterConfigVariable } from '../../src/render/variables.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { freePort, waitFor } from './env/base.ts';
import { components } from './env/components.ts';
import { startEnv, type Env } from './env/index.ts';
import { startKube } from './env/kube.ts';
import { makeImage } from './env/oci.ts';
import { httpRequest, startRenderedRegistry } from './env/registry.ts';

const test = realSuite('rendered output, real consumers');
let env: Env;

function cluster(cidrs: string[], registry: Record<string, unknown>) {
  const parsed = parseCluster({
    metadata: { name: 'c1', namespace: 'default' },
    spec: { clusterNetwork: { services: { cidrBlocks: cidrs } }, topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry } } }] } },
  });
  if (!parsed.ok) throw new Error(parsed.message);
  return { ref: parsed.value, registry: clusterRegistry(parsed.value)! };
}
async function plan(cidrs: string[], registry: Record<string, unknown> = {}): Promise<RegistryPlan & { c: ReturnType<typeof cluster> }> {
  const c = cluster(cidrs, registry);
  return { ...(await registryPlan(c.ref, c.registry)), c };
}
const file = (p: RegistryPlan, path: string) => p.nodes.files.find((f) => f.path === path)!;
const configMapData = (p: RegistryPlan, name: string) => (p.workload.find((o: any) => o.kind === 'ConfigMap' && o.metadata.name === name) as any).data as Record<string, string>;

/** A root CA and a registry-tls for these SANs, made by src/pki. */
async function pki(p: Awaited<ReturnType<typeof plan>>) {
  const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'test root');
  const tls = await issueServerCertificate(root, { ...serverCertSans(p.c.registry.layout), now: new Date() });
  return { root, tls };
}

async function rejectsWith(fn: () => Promise<unknown>, pattern: RegExp, what: string) {
  const error = await fn().then(() => undefined, (err: Error) => err);
  assert.ok(error, `${what}: expected a rejection`);
  assert.match(error!.message, pattern, what);
}

/** Fresh per-cluster credentials, as ensureCredentials makes them. */
const testCreds = (): Credentials => ({ node: { username: 'node', password: newPassword() }, push: { username: 'push', password: newPassword() }, previous: [] });

test.before(async () => {
  env = await startEnv({ workload: true, workloadServiceCidr: '10.96.0.0/12' });
});
test.after(async () => {
  await env?.stop();
});

test('every workload manifest (1, 2, 3 replicas; every knob) passes server-side dry-run create on the real API server', async () => {
  const api = env.workload!;
  const first = await plan(['10.96.0.0/12']);
  const namespace = first.workload.find((o: any) => o.kind === 'Namespace');
  assert.is((await api.request('POST', '/api/v1/namespaces?dryRun=All&fieldValidation=Strict', namespace)).status, 201);
  // Namespaced objects can only be dry-run into a namespace that exists.
  assert.is((await api.request('POST', '/api/v1/namespaces', namespace)).status, 201);
  const variants = [{}, { replicas: 1 }, { replicas: 3 }, {
    replicas: 3, storage: { size: '20Gi', storageClassName: 'fast-ssd' }, placement: 'Any', syncInterval: '30s',
    images: { registry: 'mirror.example.com:5000/library/registry:3.1.2', regbot: 'mirror.example.com:5000/regclient/regbot:v0.11.7' },
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } }, containerd: { dialTimeout: '500ms' },
    metrics: { allowFrom: ['monitoring', 'observability'] }, restrictedRepositories: [{ prefix: 'corp/', namespaces: ['team-a'] }, { prefix: 'library/internal-' }],
  }, { metrics: { enabled: false } }];
  const paths: Record<string, string> = {
    Namespace: '/api/v1/namespaces', ServiceAccount: '/api/v1/namespaces/capi-registry/serviceaccounts', ConfigMap: '/api/v1/namespaces/capi-registry/configmaps',
    Service: '/api/v1/namespaces/capi-registry/services', Secret: '/api/v1/namespaces/capi-registry/secrets',
    StatefulSet: '/apis/apps/v1/namespaces/capi-registry/statefulsets', PodDisruptionBudget: '/apis/policy/v1/namespaces/capi-registry/poddisruptionbudgets',
    NetworkPolicy: '/apis/networking.k8s.io/v1/namespaces/capi-registry/networkpolicies',
    ValidatingAdmissionPolicy: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies',
    ValidatingAdmissionPolicyBinding: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings',
  };
  for (const v of variants) {
    const p = await plan(['10.96.0.0/12'], v);
    for (const obj of p.workload as any[]) {
      const r = await api.request('POST', `${paths[obj.kind]}?dryRun=All&fieldValidation=Strict`, obj);
      if (obj.kind === 'Namespace' && r.status === 409) continue; // exists: this test created it for the others
      assert.is(r.status, 201, `${JSON.stringify(v)} ${obj.kind}/${obj.metadata.name}: ${r.text.slice(0, 400)}`);
      if (obj.kind === 'Service' && obj.spec.clusterIP !== 'None') assert.is(r.body.spec.clusterIP, obj.metadata.name === 'registry-standby' ? '10.96.0.21' : '10.96.0.20');
    }
  }
});

test('a /24 service CIDR: every dynamic address taken first by other Services, the registry\'s Services still get theirs (inside the static band); a /28 is refused, naming the fix', async () => {
  const api = await startKube('small-cidr', { serviceCidr: '10.97.0.0/24' });
  try {
    // KEP-3070 on a /24: .1-.16 are the static band, .17-.254 the dynamic one. Fill the dynamic band.
    const dynamic = new Set<string>();
    for (let i = 0; dynamic.size < 238; i++) {
      const r = await api.request('POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: `other-${i}` }, spec: { ports: [{ port: 80 }] } });
      assert.is(r.status, 201, r.text.slice(0, 300));
      dynamic.add(r.body.spec.clusterIP);
    }
    assert.ok(dynamic.has('10.97.0.20') && dynamic.has('10.97.0.21'), 'the addresses a /12 Cluster uses were taken by other Services');
    const p = await plan(['10.97.0.0/24']);
    assert.equal([p.c.registry.layout.serviceIp, p.c.registry.layout.standbyIp], ['10.97.0.15', '10.97.0.16']);
    const ns = p.workload.find((o: any) => o.kind === 'Namespace');
    assert.is((await api.request('POST', '/api/v1/namespaces', ns)).status, 201);
    for (const svc of p.workload.filter((o: any) => o.kind === 'Service' && o.spec.clusterIP !== 'None') as any[]) {
      const r = await api.request('POST', '/api/v1/namespaces/capi-registry/services', svc);
      assert.is(r.status, 201, `${svc.metadata.name}: ${r.text.slice(0, 300)}`);
      assert.is(r.body.spec.clusterIP, svc.spec.clusterIP);
    }
    // The node files name the same addresses.
    assert.match(hostsToml(p.c.registry.layout, p.c.registry.config), /\[host\."https:\/\/10\.97\.0\.15:443\/v2"\]/);
    await rejectsWith(() => plan(['10.97.0.0/28']), /service CIDR 10\.97\.0\.0\/28 is too small: .*KEP-3070.*use at least a \/27/, '/28');
  } finally {
    await api.stop();
  }
});

test('restrictedRepositories: the real API server admits a Pod naming a restricted image only in the namespaces allowed, whatever registry host it names, in containers and initContainers', async () => {
  const api = env.workload!;
  const p = await plan(['10.96.0.0/12'], { restrictedRepositories: [{ prefix: 'corp/', namespaces: ['team-a'] }, { prefix: 'library/internal-', namespaces: [] }] });
  const [policy, binding] = p.workload.filter((o: any) => o.kind.startsWith('ValidatingAdmissionPolicy')) as any[];
  assert.is((await api.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies?fieldValidation=Strict', policy)).status, 201);
  assert.is((await api.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings?fieldValidation=Strict', binding)).status, 201);
  for (const ns of ['team-a', 'team-b']) {
    await api.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    // What kube-controller-manager's ServiceAccount controller would have made (not running in this suite).
    await api.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  }
  const pod = (ns: string, image: string, where: 'containers' | 'initContainers' = 'containers') => api.request('POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' },
    spec: { containers: [{ name: 'main', image: where === 'containers' ? image : 'docker.io/library/busybox:1.36' }], ...(where === 'initContainers' ? { initContainers: [{ name: 'init', image }] } : {}) },
  });
  // The policy is in force once the API server has loaded it.
  await waitFor('the policy in force', async () => ((await pod('team-b', 'corp/app:1')).status === 403 ? true : undefined), 30_000);
  const cases: [string, string, 'containers' | 'initContainers', number][] = [
    ['team-b', 'corp/app:1', 'containers', 403],
    ['team-b', 'docker.io/corp/app:1', 'containers', 403],
    ['team-b', 'quay.io/corp/tool@sha256:' + 'a'.repeat(64), 'containers', 403],
    ['team-b', 'registry.example.com:5000/corp/app:1', 'initContainers', 403],
    ['team-a', 'corp/app:1', 'containers', 201],
    ['team-a', 'quay.io/corp/tool:2', 'initContainers', 201],
    ['team-b', 'docker.io/corpus/app:1', 'containers', 201],
    ['team-b', 'example.com/team/corp/app:1', 'containers', 201],
    ['team-a', 'internal-tool:1', 'containers', 403],
    ['team-a', 'docker.io/library/internal-tool:1', 'containers', 403],
    ['team-b', 'docker.io/library/busybox:1.36', 'containers', 201],
  ];
  const seen = [];
  for (const [ns, image, where, want] of cases) {
    const r = await pod(ns, image, where);
    seen.push(`${ns} ${image} ${where}: ${r.status}`);
    assert.is(r.status, want, `${ns} ${image} (${where}): ${r.text.slice(0, 300)}`);
    if (want === 403) assert.match(String(r.body?.message), new RegExp(`image ${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is under the restricted repository prefix (corp/|library/internal-): the registry mirror serves it to every node`), r.text.slice(0, 600));
  }
  console.log(`  ${seen.length} Pods: ${seen.filter((s) => s.endsWith('403')).length} refused, the rest admitted`);
  await api.request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${binding.metadata.name}`);
  await api.request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${policy.metadata.name}`);
});

test('the rendered config.yml starts Distribution 3.x and 2.8 over TLS with htpasswd auth: anonymous pull and push 401, push credential pushes, node credential pulls; auth off serves anyone', async () => {
  const p = await plan(['10.96.0.0/12']);
  const { tls } = await pki(p);
  const config = configMapData(p, 'registry-config')['config.yml']!;
  const creds = testCreds();
  const htpasswd = htpasswdFor(creds, undefined);
  assert.match(htpasswd, /^node:\$2b\$04\$.{53}\npush:\$2b\$04\$.{53}\n$/);
  for (const [name, binary] of [['v3', components().registry.path], ['v2.8', components().registry2.path]] as const) {
    const registry = await startRenderedRegistry(`config-${name}`, binary, config, tls, `127.0.0.1:${await freePort()}`, undefined, htpasswd);
    const image = makeImage(`rendered config ${name}`);
    const anonymous = await httpRequest(`${registry.url}/v2/`, { ca: tls['ca.crt'] });
    assert.is(anonymous.status, 401, `${name}: anonymous /v2/`);
    assert.match(String(anonymous.headers['www-authenticate']), /Basic realm="capi-registry"/);
    await rejectsWith(() => registry.push('rendered/hello', 'v1', image), /upload start 401/, `${name}: anonymous push`);
    await rejectsWith(() => registry.push('rendered/hello', 'v1', image, basicAuthorization({ ...creds.push, password: newPassword() })), /upload start 401/, `${name}: wrong password`);
    assert.is(await registry.push('rendered/hello', 'v1', image, basicAuthorization(creds.push)), image.manifest.digest, `${name}: push credential`);
    assert.is((await registry.manifest('rendered/hello', image.manifest.digest)).status, 401, `${name}: anonymous pull`);
    assert.is((await registry.manifest('rendered/hello', image.manifest.digest, basicAuthorization(creds.node))).digest, image.manifest.digest, `${name}: node credential pulls`);
    const log = readFileSync(registry.logFile, 'utf8');
    assert.not.match(log, /No HTTP secret provided/, `${name}: the shared secret comes from the env`);
    assert.not.ok(log.includes(creds.node.password) || log.includes(creds.push.password), `${name}: no password in the registry log`);
    await registry.stop();
  }
  const open = await plan(['10.96.0.0/12'], { auth: { enabled: false } });
  const openConfig = configMapData(open, 'registry-config')['config.yml']!;
  assert.not.match(openConfig, /htpasswd/);
  const registry = await startRenderedRegistry('config-open', components().registry.path, openConfig, tls, `127.0.0.1:${await freePort()}`);
  const image = makeImage('open registry');
  assert.is(await registry.push('open/hello', 'v1', image), image.manifest.digest, 'auth off: anyone pushes');
  await registry.stop();
});

test('the variable schema is a valid structural schema to the real API server, which applies its defaults and enforces its rules', async () => {
  // CAPI validates ClusterClass variable schemas with the same apiextensions machinery a CRD uses.
  const api = env.workload!;
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: 'clusterconfigs.schema-test.capi-registry-addon.io' },
    spec: {
      group: 'schema-test.capi-registry-addon.io', scope: 'Namespaced',
      names: { plural: 'clusterconfigs', singular: 'clusterconfig', kind: 'ClusterConfig' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: {
        type: 'object', properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec: clusterConfigVariable.schema.openAPIV3Schema },
      } } }],
    },
  };
  const created = await api.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  assert.is(created.status, 201, created.text);
  await waitFor('schema CRD Established', async () => {
    const r = await api.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
    return r.body?.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True') ? true : undefined;
  });
  const post = (name: string, registry: unknown) => api.request('POST', '/apis/schema-test.capi-registry-addon.io/v1/namespaces/default/clusterconfigs?fieldValidation=Strict', {
    apiVersion: 'schema-test.capi-registry-addon.io/v1', kind: 'ClusterConfig', metadata: { name }, spec: { addons: { registry } },
  });
  const empty = await post('empty', {});
  assert.is(empty.status, 201, empty.text);
  // `{}` is defaulted by the server exactly as readRegistryConfig defaults it.
  const d = readRegistryConfig({});
  assert.equal(empty.body.spec.addons.registry, { provider: d.provider, replicas: d.replicas, placement: d.placement, syncInterval: d.syncInterval });
  const full = await post('full', { replicas: 3, storage: { size: '20Gi', storageClassName: 'fast-ssd' }, placement: 'Any', syncInterval: '30s', images: { registry: 'mirror.example.com:5000/library/registry:3.1.2' }, containerd: { dialTimeout: '500ms' } });
  assert.is(full.status, 201, full.text);
  // Transition rules on update: the size only grows, the class never changes.
  const put = (registry: unknown) => api.request('PATCH', '/apis/schema-test.capi-registry-addon.io/v1/namespaces/default/clusterconfigs/full', JSON.stringify({ spec: { addons: { registry } } }), 'application/merge-patch+json');
  for (const [storage, words] of [[{ size: '10Gi' }, 'storage.size cannot shrink'], [{ storageClassName: 'other' }, 'storage.storageClassName cannot change'], [{ storageClassName: null }, 'storage.storageClassName cannot change']] as const) {
    const r = await put({ storage });
    assert.is(r.status, 422, `${JSON.stringify(storage)}: ${r.text}`);
    assert.match(r.body.message, new RegExp(words.replace(/\./g, '\\.')), r.text);
  }
  for (const size of ['20480Mi', '40Gi', '0.1Ti']) assert.is((await put({ storage: { size } })).status, 200, `${size}: the same or larger`);
  for (const [name, bad, field] of [
    ['enum', { provider: 'Harbor' }, /spec\.addons\.registry\.provider: Unsupported value: "Harbor"/],
    ['range', { replicas: 11 }, /spec\.addons\.registry\.replicas: Invalid value: 11/],
    ['pattern', { storage: { size: '100 GB' } }, /spec\.addons\.registry\.storage\.size in body should match/],
    ['duration', { syncInterval: 'soon' }, /spec\.addons\.registry\.syncInterval in body should match/],
    ['image', { images: { regbot: 'Not An Image' } }, /spec\.addons\.registry\.images\.regbot in body should match/],
  ] as const) {
    const r = await post(`bad-${name}`, bad);
    assert.is(r.status, 422, `${name}: ${r.text}`);
    assert.match(r.body.message, field, r.text);
    // Our own validation refuses the same value.
    assert.throws(() => readRegistryConfig(bad as Record<string, unknown>), (e: Error) => e instanceof RenderError);
  }
});

test.run();
