// Renderers: golden files for every shape of input, determinism, and every invalid input's message.
// Regenerate goldens with UPDATE_GOLDEN=1 npm test -- --only=unit (then review the diff).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan } from '../../src/addon/plan.ts';
import { PATTERNS, readRegistryConfig } from '../../src/render/config.ts';
import { repositoryPattern, restrictedRepositoryPolicy } from '../../src/render/admission.ts';
import { dumpYaml } from '../../src/render/distribution.ts';
import { registryLayout, RenderError, serverCertSans, serviceIp, staticBandSize } from '../../src/render/metadata.ts';
import { toToml } from '../../src/render/toml.ts';
import { clusterConfigVariable } from '../../src/render/variables.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { FIXTURES } from '../helpers.ts';

const test = suite('render');
const GOLDEN = join(FIXTURES, 'golden', 'render');

async function renderCase(dir: string): Promise<string> {
  const parsed = parseCluster(JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')));
  if (!parsed.ok) throw new Error(parsed.message);
  return dumpYaml(await registryPlan(parsed.value, clusterRegistry(parsed.value)!));
}

test('golden: IPv4, IPv6, dual-stack, 1 and 3 replicas, every knob, auth off, sources on one replica', async () => {
  const cases = readdirSync(GOLDEN).sort();
  assert.equal(cases, ['auth-off', 'dual-stack', 'every-knob', 'ipv4-defaults', 'ipv6', 'one-replica', 'sources', 'three-replicas']);
  for (const name of cases) {
    const dir = join(GOLDEN, name);
    const out = await renderCase(dir);
    const file = join(dir, 'expected.yaml');
    if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, out);
    assert.fixture(out, readFileSync(file, 'utf8'), name);
    assert.is(await renderCase(dir), out, `${name} renders byte for byte the same twice`);
  }
});

test('service IP: the 20th address of the first CIDR inside Kubernetes\' static band, else the band\'s last two; any family; bracketed in URLs', () => {
  assert.is(serviceIp(['10.96.0.0/12']), '10.96.0.20');
  assert.is(serviceIp(['10.96.7.9/12']), '10.96.0.20');
  assert.is(serviceIp(['fd00:10:96::/112']), 'fd00:10:96::14');
  assert.is(serviceIp(['fd00:10:96::/112', '10.96.0.0/12']), 'fd00:10:96::14');
  // KEP-3070: the band is min(max(16, size/16), 256) addresses: /20 and larger 256, /21 128, /22 64, /23 32,
  // /24 to /27 16, /28 and smaller none.
  assert.equal([12, 20, 21, 22, 23, 24, 25, 26, 27, 28].map((p) => staticBandSize(32 - p)), [256, 256, 128, 64, 32, 16, 16, 16, 16, 0]);
  for (const cidr of ['10.96.0.0/20', '10.96.0.0/21', '10.96.0.0/22', '10.96.0.0/23']) {
    assert.equal(registryLayout(2, undefined, [cidr]), { replicas: 2, serviceDomain: 'cluster.local', serviceIp: '10.96.0.20', standbyIp: '10.96.0.21' }, `${cidr} keeps today's addresses`);
  }
  for (const cidr of ['127.0.0.0/24', '127.0.0.0/25', '127.0.0.0/26', '127.0.0.0/27']) {
    const layout = registryLayout(2, undefined, [cidr]);
    assert.equal([layout.serviceIp, layout.standbyIp], ['127.0.0.15', '127.0.0.16'], `${cidr}: inside the band of 16, clear of .1 and .10`);
  }
  assert.equal([serviceIp(['fd00:10:96::/120'], 'writer'), serviceIp(['fd00:10:96::/120'], 'standby')], ['fd00:10:96::f', 'fd00:10:96::10']);
  assert.equal(registryLayout(2, undefined, ['fd00:10:96::/112']), { replicas: 2, serviceDomain: 'cluster.local', serviceIp: 'fd00:10:96::14', standbyIp: 'fd00:10:96::15' });
  const hosts = readFileSync(join(GOLDEN, 'ipv6', 'expected.yaml'), 'utf8');
  assert.match(hosts, /\[host\."https:\/\/\[fd00:10:96::14\]:443\/v2"\]/);
  assert.is(serviceIp([]), '10.96.0.20', "no service CIDR: kubeadm's default 10.96.0.0/12");
  // serviceDomain reaches the sync sidecar's Lua and regbot's templates and the certificate: a DNS name or a refusal.
  assert.is(registryLayout(2, 'corp.internal', ['10.96.0.0/12']).serviceDomain, 'corp.internal');
  assert.is(registryLayout(2, undefined, ['10.96.0.0/12']).serviceDomain, 'cluster.local');
  for (const bad of ['cluster.local"; os.execute("id")', '{{ file "/etc/passwd" }}', 'Cluster.Local', 'a..b', '-x.local', `${'a'.repeat(64)}.local`, 'a b']) {
    assert.throws(() => registryLayout(2, bad, ['10.96.0.0/12']), (e: Error) => e instanceof RenderError && /clusterNetwork\.serviceDomain .* is not a DNS name/.test(e.message), bad);
  }
  for (const [cidrs, message] of [
    [['10.96.0.0'], /"10\.96\.0\.0" is not a valid CIDR/],
    [['10.96.0.0/33'], /is not a valid CIDR/],
    [['banana/12'], /is not a valid CIDR/],
    [['10.96.0.0/28'], /is too small: Kubernetes reserves no addresses for fixed ClusterIPs .* \(KEP-3070\).* use at least a \/27/],
    [['fd00::/124'], /is too small: .* use at least a \/123/],
  ] as const) {
    assert.throws(() => serviceIp(cidrs as unknown as string[]), (e: Error) => e instanceof RenderError && message.test(e.message), String(message));
  }
});

test('SANs: every Service form (writer, standby, headless), every replica headless form, both Service IPs, 127.0.0.1, localhost', () => {
  const sans = serverCertSans({ replicas: 2, serviceDomain: 'cluster.local', serviceIp: '10.96.0.20', standbyIp: '10.96.0.21' });
  assert.is(sans.commonName, 'registry');
  assert.equal(sans.ipAddresses, ['10.96.0.20', '10.96.0.21', '127.0.0.1']);
  for (const n of ['registry', 'registry.capi-registry.svc.cluster.local', 'registry-standby.capi-registry.svc', 'registry-headless.capi-registry.svc', 'registry-1.registry-headless.capi-registry.svc.cluster.local', 'localhost']) {
    assert.ok(sans.dnsNames.includes(n), n);
  }
  assert.is(sans.dnsNames.length, 17);
});

test('invalid knobs: every problem named, with the allowed values', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ provider: 'Harbor' }, /clusterConfig\.addons\.registry\.provider is "Harbor": allowed values are "CNCF Distribution"/],
    [{ replicas: 0 }, /replicas is 0: expected a whole number from 1 to 10/],
    [{ replicas: 2.5 }, /replicas is 2\.5/],
    [{ replicas: '3' }, /replicas is "3"/],
    [{ storage: { size: '100 GB' } }, /storage\.size is "100 GB": expected a Kubernetes quantity such as 100Gi/],
    [{ storage: { storageClassName: 'Fast_SSD' } }, /storage\.storageClassName is "Fast_SSD": expected a StorageClass name/],
    [{ placement: 'Workers' }, /placement is "Workers": allowed values are "ControlPlane", "Any"/],
    [{ syncInterval: '5 minutes' }, /syncInterval is "5 minutes": expected a duration such as 2m/],
    [{ images: { registry: 'UPPER/case' } }, /images\.registry is "UPPER\/case": expected an image reference/],
    [{ containerd: { dialTimeout: 2 } }, /containerd\.dialTimeout must be a string/],
    // An air-gapped Cluster's regsync override must not silently become a pull of regbot from ghcr.io.
    [{ images: { regsync: 'mirror.example.com/regclient/regsync:v0.11.7' } }, /images\.regsync is no longer used: .*set images\.regbot to your copy of ghcr\.io\/regclient\/regbot:v0\.11\.7/],
    [{ resources: { limits: { memory: 'lots' } } }, /resources\.limits\.memory is "lots"/],
    [{ replica: 3 }, /has an unknown field "replica": known fields are provider, replicas/],
    [{ storage: 'big' }, /storage must be an object/],
    [{ metrics: { allowFrom: 'monitoring' } }, /metrics\.allowFrom must be a list of at most 16 strings/],
    [{ metrics: { allowFrom: ['monitoring', 'Kube System'] } }, /metrics\.allowFrom holds "Kube System": expected a namespace name/],
    [{ metrics: { enabled: 'yes' } }, /metrics\.enabled is "yes": expected true or false/],
    [{ restrictedRepositories: { prefix: 'corp/' } }, /restrictedRepositories must be a list of at most 32 \{prefix, namespaces\}/],
    [{ restrictedRepositories: [{ prefix: 'Corp/' }] }, /restrictedRepositories\[0\]\.prefix is "Corp\/": expected the start of a repository path/],
    [{ restrictedRepositories: [{ prefix: "corp/') || true || ('" }] }, /restrictedRepositories\[0\]\.prefix is .*: expected the start of a repository path/],
    [{ restrictedRepositories: [{ prefix: 'corp/', namespaces: ['Team A'] }] }, /restrictedRepositories\[0\]\.namespaces must be a list of at most 16 namespace names/],
    [{ restrictedRepositories: [{ prefix: 'corp/', namespace: ['a'] }] }, /restrictedRepositories\[0\] has an unknown field "namespace"/],
  ];
  for (const [value, message] of cases) assert.throws(() => readRegistryConfig(value), (e: Error) => e instanceof RenderError && message.test(e.message), String(message));
  // Several problems are reported together.
  assert.throws(() => readRegistryConfig({ replicas: 0, placement: 'x' }), /replicas is 0.*; .*placement is "x"/);
});

test('restrictedRepositories: the pattern matches a repository path under the prefix from any registry host, and Docker Hub short names; the policy is rendered only when set', () => {
  const matches = (prefix: string, image: string) => new RegExp(repositoryPattern(prefix)).test(image);
  for (const image of ['corp/app:1', 'docker.io/corp/app', 'quay.io/corp/a/b@sha256:' + 'a'.repeat(64), 'registry.example.com:5000/corp/app', 'localhost:5000/corp/app']) assert.ok(matches('corp/', image), image);
  for (const image of ['corpus/app', 'example.com/team/corp/app', 'docker.io/library/busybox']) assert.not.ok(matches('corp/', image), image);
  for (const image of ['internal-app:1', 'docker.io/internal-app', 'docker.io/library/internal-app', 'ghcr.io/library/internal-app']) assert.ok(matches('library/internal-', image), image);
  assert.not.ok(matches('library/internal-', 'quay.io/internal-app'), 'quay.io/internal-app is the mirror\'s internal-app, not library/internal-app');
  assert.equal(readRegistryConfig({}).restrictedRepositories, []);
  const config = readRegistryConfig({ restrictedRepositories: [{ prefix: 'corp/', namespaces: ['team-a'] }, { prefix: 'secret-' }] });
  assert.equal(config.restrictedRepositories, [{ prefix: 'corp/', namespaces: ['team-a'] }, { prefix: 'secret-', namespaces: [] }]);
  const [policy, binding] = restrictedRepositoryPolicy(config.restrictedRepositories) as any[];
  assert.is(policy.spec.validations.length, 2);
  assert.match(policy.spec.validations[0].expression, /^request\.namespace in \['team-a'\] \|\| !variables\.images\.exists/);
  assert.match(policy.spec.validations[1].expression, /^request\.namespace in \[\] \|\|/, 'no namespace listed: no Pod may');
  assert.equal(binding.spec, { policyName: policy.metadata.name, validationActions: ['Deny'] });
  assert.equal(restrictedRepositoryPolicy([]), []);
});

test('the schema and the validation agree on defaults, enums and limits', () => {
  const schema = clusterConfigVariable.schema.openAPIV3Schema.properties.addons.properties.registry.properties;
  const defaults = readRegistryConfig({});
  assert.is(schema.replicas.default, defaults.replicas);
  assert.is(schema.placement.default, defaults.placement);
  assert.is(schema.storage.properties.size.default, defaults.storage.size);
  assert.is(schema.syncInterval.default, defaults.syncInterval);
  assert.is(schema.containerd.properties.dialTimeout.default, defaults.containerd.dialTimeout);
  assert.is(schema.metrics.properties.enabled.default, defaults.metrics.enabled);
  assert.equal(schema.metrics.properties.allowFrom.default, defaults.metrics.allowFrom);
  assert.is(schema.metrics.properties.allowFrom.items.pattern, PATTERNS.namespace);
  assert.equal(readRegistryConfig({}, { registry: 'mirror.example.com/registry:3.1.2', regbot: 'mirror.example.com/regbot:v0.11.7' }).images.registry, 'mirror.example.com/registry:3.1.2', 'the server\'s default images');
  assert.equal(readRegistryConfig({ images: { registry: 'own.example.com/registry:3' } }, { registry: 'mirror.example.com/registry:3.1.2', regbot: 'x/regbot:1' }).images.registry, 'own.example.com/registry:3', 'a Cluster\'s own image wins');
  assert.equal(schema.provider.enum, ['CNCF Distribution']);
  assert.ok(!('default' in schema.images.properties.registry), 'image defaults stay out of the schema');
  for (const value of [schema.replicas.minimum, schema.replicas.maximum]) assert.ok(readRegistryConfig({ replicas: value }));
  for (const p of [schema.storage.properties.size.pattern, schema.syncInterval.pattern]) new RegExp(p);
});

test('TOML writer: escaping, arrays, nested tables, determinism', () => {
  const doc = { a: 'x"y\\z\n', b: true, n: 3, l: ['p', 'q'], t: { 'k.with.dots': { v: 'w' }, plain: { x: ['1'] } } };
  assert.is(toToml(doc), 'a = "x\\"y\\\\z\\u000a"\nb = true\nn = 3\nl = ["p", "q"]\n\n[t."k.with.dots"]\n  v = "w"\n\n[t.plain]\n  x = ["1"]\n');
  assert.throws(() => toToml({ f: 1.5 }), /only integers/);
});

test.run();
