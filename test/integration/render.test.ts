// The renderers' output used verbatim by the real consumers: the workload kube-apiserver (server-side
// dry-run), Distribution 3.x and 2.8, regsync, and containerd (hosts.toml, CA, config_path script).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { registryPlan, type RegistryPlan } from '../../src/addon/plan.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { issueServerCertificate } from '../../src/pki/server-cert.ts';
import { enableConfigPathScript, hostsToml as renderHostsToml } from '../../src/render/node-files.ts';
import { basicAuthorization, htpasswdFor, newPassword, type Credentials } from '../../src/addon/credentials.ts';
import { NODE, POD, RenderError, serverCertSans } from '../../src/render/metadata.ts';
import { readRegistryConfig } from '../../src/render/config.ts';
import { clusterConfigVariable } from '../../src/render/variables.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { freePort, inMountNamespace, startProcess, waitFor, workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { startContainerd } from './env/containerd.ts';
import { startEnv, type Env } from './env/index.ts';
import { makeImage } from './env/oci.ts';
import { httpRequest, Registry, startRegistry } from './env/registry.ts';

const test = suite('rendered output, real consumers');
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

/** Runs a Distribution binary with the rendered config.yml at its pod paths (mount namespace); `htpasswd` as the auth Secret mounts it. */
async function startRenderedRegistry(name: string, binary: string, config: string, tls: { 'tls.crt': string; 'tls.key': string; 'ca.crt': string }, addr: string, tlsName?: string, htpasswd?: string): Promise<Registry> {
  const root = workDir('rendered-registry', name);
  const etc = join(root, 'etc');
  if (htpasswd !== undefined) {
    mkdirSync(join(etc, POD.authDir.replace('/etc/', '')), { recursive: true });
    writeFileSync(join(etc, POD.htpasswdFile.replace('/etc/', '')), htpasswd);
  }
  mkdirSync(join(etc, POD.configDir.replace('/etc/', '')), { recursive: true });
  mkdirSync(join(etc, POD.tlsDir.replace('/etc/', '')), { recursive: true });
  writeFileSync(join(etc, POD.configFile.replace('/etc/', '')), config);
  writeFileSync(join(etc, POD.tlsDir.replace('/etc/', ''), 'tls.crt'), tls['tls.crt']);
  writeFileSync(join(etc, POD.tlsDir.replace('/etc/', ''), 'tls.key'), tls['tls.key']);
  const varLib = join(root, 'var-lib');
  mkdirSync(join(varLib, 'registry'), { recursive: true });
  const [cmd, args] = inMountNamespace([[etc, '/etc'], [varLib, '/var/lib']], binary, ['serve', POD.configFile]);
  // As in the pod: the shared HTTP secret from the env. The listen addresses are the only overrides:
  // pods have a network namespace each, while the test's registries share the machine's.
  const proc = startProcess(`registry-${name}`, cmd, args, {
    env: { PATH: process.env.PATH ?? '', REGISTRY_HTTP_SECRET: 'shared-secret', REGISTRY_HTTP_ADDR: addr, REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${await freePort()}`, OTEL_TRACES_EXPORTER: 'none' },
  });
  const registry = new Registry(addr, tls['ca.crt'], join(varLib, 'registry'), proc, tlsName);
  // What the pod's probes ask: `/` answers 200 without credentials.
  await waitFor(`rendered registry ${name}`, async () => {
    if (proc.proc.exitCode !== null) throw new Error(`exited ${proc.proc.exitCode}`);
    return (await httpRequest(`${registry.url}/`, { ca: tls['ca.crt'], tlsName })).status === 200 ? true : undefined;
  }, 20_000, proc.logFile);
  return registry;
}

test.before(async () => {
  env = await startEnv({ workload: true, workloadServiceCidr: '10.96.0.0/12' });
});
test.after(async () => {
  await env.stop();
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
    images: { registry: 'mirror.example.com:5000/library/registry:3.1.2', regsync: 'mirror.example.com:5000/regclient/regsync:v0.11.7' },
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } }, containerd: { dialTimeout: '500ms' },
  }];
  const paths: Record<string, string> = {
    Namespace: '/api/v1/namespaces', ServiceAccount: '/api/v1/namespaces/capi-registry/serviceaccounts', ConfigMap: '/api/v1/namespaces/capi-registry/configmaps',
    Service: '/api/v1/namespaces/capi-registry/services', Secret: '/api/v1/namespaces/capi-registry/secrets',
    StatefulSet: '/apis/apps/v1/namespaces/capi-registry/statefulsets', PodDisruptionBudget: '/apis/policy/v1/namespaces/capi-registry/poddisruptionbudgets',
  };
  for (const v of variants) {
    const p = await plan(['10.96.0.0/12'], v);
    for (const obj of p.workload as any[]) {
      const r = await api.request('POST', `${paths[obj.kind]}?dryRun=All&fieldValidation=Strict`, obj);
      if (obj.kind === 'Namespace' && r.status === 409) continue; // exists: this test created it for the others
      assert.is(r.status, 201, `${JSON.stringify(v)} ${obj.kind}/${obj.metadata.name}: ${r.text.slice(0, 400)}`);
      if (obj.kind === 'Service' && obj.spec.clusterIP !== 'None') assert.is(r.body.spec.clusterIP, '10.96.0.20');
    }
  }
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

test('rendered regsync configs pass `regsync config`; registry-0\'s sidecar syncs what registry-1 holds between two authenticated replicas, TLS verified against ca.crt', async () => {
  const p = await plan(['10.96.0.0/12'], { replicas: 2 });
  const { tls } = await pki(p);
  const creds = testCreds();
  const htpasswd = htpasswdFor(creds, undefined);
  const configs = configMapData(p, 'registry-regsync');
  assert.equal(Object.keys(configs), ['registry-0.yml', 'registry-1.yml']);
  const config = configMapData(p, 'registry-config')['config.yml']!;
  // Pod 0's own registry is 127.0.0.1:5000 from its sidecar's view; pod 1 answers on its headless name.
  const pod0 = await startRenderedRegistry('pod-0', components().registry.path, config, tls, '127.0.0.1:5000', undefined, htpasswd);
  const pod1 = await startRenderedRegistry('pod-1', components().registry.path, config, tls, '127.0.0.11:5000', 'registry-1.registry-headless.capi-registry.svc.cluster.local', htpasswd);
  const image = makeImage('pushed to pod 1');
  const push = basicAuthorization(creds.push);
  const pull = basicAuthorization(creds.node);
  await pod1.push('team/app', 'v7', image, push);
  assert.is((await pod0.manifest('team/app', 'v7', pull)).status, 404);
  // The sidecar's filesystem: ca.crt only, and cluster DNS for the headless names (as /etc/hosts).
  const etc = workDir('regsync-pod-0', 'etc');
  mkdirSync(join(etc, 'regsync', 'ca'), { recursive: true });
  writeFileSync(join(etc, 'regsync', 'ca', 'ca.crt'), tls['ca.crt']);
  // The regsync-auth Secret as mounted: one file per key, the node credential.
  mkdirSync(join(etc, 'regsync', 'auth'), { recursive: true });
  for (const [key, value] of Object.entries(creds.node)) writeFileSync(join(etc, 'regsync', 'auth', key), value);
  writeFileSync(join(etc, 'hosts'), '127.0.0.1 localhost\n127.0.0.10 registry-0.registry-headless.capi-registry.svc.cluster.local\n127.0.0.11 registry-1.registry-headless.capi-registry.svc.cluster.local\n');
  writeFileSync(join(etc, 'nsswitch.conf'), 'hosts: files\n');
  writeFileSync(join(etc, 'sync.yml'), configs['registry-0.yml']!);
  const regsync = (command: string) => {
    const [cmd, args] = inMountNamespace([[etc, '/etc']], components().regsync.path, [command, '-c', '/etc/sync.yml', '-v', 'info']);
    return spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } });
  };
  for (const [pod, text] of Object.entries(configs)) {
    writeFileSync(join(etc, 'sync.yml'), text);
    const checked = regsync('config');
    assert.is(checked.status, 0, `${pod}: ${checked.stderr}`);
    assert.match(checked.stdout, /BEGIN CERTIFICATE/, `${pod}: the {{ file }} template expands to the CA`);
  }
  writeFileSync(join(etc, 'sync.yml'), configs['registry-0.yml']!);
  const once = regsync('once');
  assert.is(once.status, 0, once.stderr);
  assert.is((await pod0.manifest('team/app', 'v7', pull)).digest, image.manifest.digest);
  await waitFor('regsync authenticated as the node credential', async () => (/"auth\.user\.name":"node"/.test(readFileSync(pod0.logFile, 'utf8')) ? true : undefined), 10_000);
  // Without the right CA the same sync fails: TLS really is verified.
  writeFileSync(join(etc, 'regsync', 'ca', 'ca.crt'), (await mintRootCa({ now: new Date() }))['ca.crt']);
  await pod1.push('team/other', 'v1', makeImage('second'), push);
  const untrusted = regsync('once');
  assert.match(`${untrusted.stdout}${untrusted.stderr}`, /x509|certificate/);
  assert.is((await pod0.manifest('team/other', 'v1', pull)).status, 404);
  await pod0.stop();
  await pod1.stop();
});

test('containerd pulls through the rendered hosts.toml and CA file, verbatim at their node paths, and falls back to the upstream when the registry is down', async () => {
  // A service CIDR of 127.0.0.0/24 puts the registry's Service IP at 127.0.0.20: a loopback address.
  const p = await plan(['127.0.0.0/24']);
  const { tls } = await pki(p);
  // Auth on: the template only names the node Secret; its hosts.toml (with the credential header) is
  // what ensureCredentials renders into that Secret.
  assert.equal(file(p, NODE.hostsToml).contentFrom, { secret: { name: 'c1-registry-addon-node', key: 'hosts.toml' } });
  const creds = testCreds();
  const hostsToml = renderHostsToml(p.c.registry.layout, p.c.registry.config, basicAuthorization(creds.node));
  assert.match(hostsToml, /\[host\."https:\/\/127\.0\.0\.20:443\/v2"\]/);
  assert.match(hostsToml, /\[host\."https:\/\/127\.0\.0\.20:443\/v2"\.header\]\n {2}authorization = "Basic /);
  // The node's /etc/containerd: hosts.toml as rendered, the CA as contentFrom would write it.
  const etcContainerd = workDir('node', 'etc-containerd');
  mkdirSync(join(etcContainerd, 'certs.d', '_default'), { recursive: true });
  writeFileSync(join(etcContainerd, NODE.hostsToml.replace('/etc/containerd/', '')), hostsToml);
  writeFileSync(join(etcContainerd, NODE.caFile.replace('/etc/containerd/', '')), tls['ca.crt']);
  const config = configMapData(p, 'registry-config')['config.yml']!;
  const mirror = await startRenderedRegistry('service-ip', components().registry.path, config, tls, '127.0.0.20:443', undefined, htpasswdFor(creds, undefined));
  const upstream = await startRegistry('node-upstream', undefined);
  const ctd = await startContainerd('render');
  const fetch = (ref: string) => {
    const [cmd, args] = inMountNamespace([[etcContainerd, '/etc/containerd']], components().containerd.ctr,
      ['--debug', '--address', ctd.socket, 'content', 'fetch', '--hosts-dir', NODE.hostsDir, ref]);
    const started = Date.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`, ms: Date.now() - started };
  };
  const cached = makeImage('only in the in-cluster registry');
  await mirror.push('library/app', '1.0', cached, basicAuthorization(creds.push));
  const viaMirror = fetch(`${upstream.host}/library/app:1.0`);
  assert.ok(viaMirror.ok, viaMirror.output);
  // The access log reaches its file through a pipe: wait for the line.
  await waitFor('the mirror logs the node credential', async () => (/"auth\.user\.name":"node"/.test(readFileSync(mirror.logFile, 'utf8')) ? true : undefined), 10_000);
  assert.not.ok(viaMirror.output.includes(basicAuthorization(creds.node).slice(6)), 'ctr --debug does not print the credential');
  assert.not.match(viaMirror.output, /failed to decode hosts\.toml|invalid `host` tree/);
  assert.match(viaMirror.output, /https:\/\/127\.0\.0\.20:443\/v2\/library\/app\/manifests\/1\.0\?ns=127\.0\.0\.1/);
  assert.ok(ctd.content().includes(cached.manifest.digest));

  await mirror.stop();
  const fresh = makeImage('only upstream');
  await upstream.push('library/new', '2.0', fresh);
  const fallback = fetch(`${upstream.host}/library/new:2.0`);
  assert.ok(fallback.ok, fallback.output);
  assert.match(fallback.output, /trying next host.*127\.0\.0\.20:443.*connection refused/);
  assert.ok(ctd.content().includes(fresh.manifest.digest));
  // containerd 1.6 ignores dial_timeout (2.1+ honours it); a refused connection falls through at once.
  assert.ok(fallback.ms < 10_000, `fell back in ${fallback.ms} ms`);
  await upstream.stop();
  await ctd.stop();
});

test('the config_path script on stock v2 (containerd 1.6) and v3 (containerd 2.x) configs: `config dump` keeps every other setting', () => {
  const script = join(workDir('config-path'), 'enable.sh');
  writeFileSync(script, enableConfigPathScript());
  chmodSync(script, 0o755);
  for (const [name, binary] of [['v2', components().containerd.path], ['v3', components().containerd2.path]] as const) {
    const stock = spawnSync(binary, ['config', 'default'], { encoding: 'utf8' }).stdout;
    assert.match(stock, name === 'v3' ? /^version = 3/m : /^version = 2/m);
    const dump = (config: string) => {
      const d = workDir('config-path', name, String(Math.random()).slice(2));
      writeFileSync(join(d, 'config.toml'), config);
      const r = spawnSync(binary, ['--config', join(d, 'config.toml'), 'config', 'dump'], { encoding: 'utf8' });
      assert.is(r.status, 0, `${name} config dump: ${r.stderr}`);
      return r.stdout.replace(join(d, 'config.toml'), 'CONFIG');
    };
    const d = workDir('config-path', name, 'node');
    writeFileSync(join(d, 'config.toml'), stock);
    const run = () => spawnSync('sh', [script, join(d, 'config.toml'), '--no-restart'], { encoding: 'utf8' });
    assert.is(run().status, 0);
    const patched = readFileSync(join(d, 'config.toml'), 'utf8');
    assert.is(run().status, 0);
    assert.is(readFileSync(join(d, 'config.toml'), 'utf8'), patched, `${name}: a second run changes nothing`);
    const before = dump(stock).split('\n');
    const after = dump(patched).split('\n');
    const changed = after.filter((l, i) => l !== before[i]);
    assert.is(before.length, after.length, `${name}: same number of settings`);
    if (name === 'v2') assert.equal(changed.map((l) => l.trim()), ['config_path = "/etc/containerd/certs.d"']);
    // containerd 2.x already defaults to "/etc/containerd/certs.d:/etc/docker/certs.d": left as it is.
    else assert.equal(changed, []);
  }
  // A v3 config with another config_path: ours is appended, theirs keeps precedence.
  const d = workDir('config-path', 'custom');
  writeFileSync(join(d, 'config.toml'), "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/srv/certs'\n");
  spawnSync('sh', [script, join(d, 'config.toml'), '--no-restart']);
  const dumped = spawnSync(components().containerd2.path, ['--config', join(d, 'config.toml'), 'config', 'dump'], { encoding: 'utf8' }).stdout;
  assert.match(dumped, /config_path = '\/srv\/certs:\/etc\/containerd\/certs\.d'/);
  // Legacy mirrors: left alone, with a message, because containerd would refuse both.
  writeFileSync(join(d, 'mirrors.toml'), 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.example.com"]\n');
  const refused = spawnSync('sh', [script, join(d, 'mirrors.toml'), '--no-restart'], { encoding: 'utf8' });
  assert.is(refused.status, 0);
  assert.match(refused.stderr, /configures legacy registry mirrors; not setting config_path/);
  assert.not.match(readFileSync(join(d, 'mirrors.toml'), 'utf8'), /config_path/);
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
  for (const [name, bad, field] of [
    ['enum', { provider: 'Harbor' }, /spec\.addons\.registry\.provider: Unsupported value: "Harbor"/],
    ['range', { replicas: 11 }, /spec\.addons\.registry\.replicas: Invalid value: 11/],
    ['pattern', { storage: { size: '100 GB' } }, /spec\.addons\.registry\.storage\.size in body should match/],
    ['duration', { syncInterval: 'soon' }, /spec\.addons\.registry\.syncInterval in body should match/],
    ['image', { images: { regsync: 'Not An Image' } }, /spec\.addons\.registry\.images\.regsync in body should match/],
  ] as const) {
    const r = await post(`bad-${name}`, bad);
    assert.is(r.status, 422, `${name}: ${r.text}`);
    assert.match(r.body.message, field, r.text);
    // Our own validation refuses the same value.
    assert.throws(() => readRegistryConfig(bad as Record<string, unknown>), (e: Error) => e instanceof RenderError);
  }
});

test.run();
