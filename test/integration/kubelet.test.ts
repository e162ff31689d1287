// Real nodes: kubelets run the registry the hooks deployed through CAAPH, and pull Pods' images through
// the mirror. A workload cluster of the newest Kubernetes served (kube-apiserver, controller manager,
// scheduler, CoreDNS, a local-path provisioner) with two nodes on different containerd lines: cp1
// (Debian's containerd 1.6, the control plane, where the chart's affinity places the registry) and w1
// (containerd 2.4). CAPI's kubeadm bootstrap provider renders each Machine's cloud-init from the
// KubeadmConfigSpec the extension's GeneratePatches made; the node runs it as cloud-init would (kubeadm
// aside: the kubelet starts with a kubeconfig). Only the infrastructure images (pause, registry, regbot,
// the provisioner's busybox) are pre-loaded; workload images come only through the mirror (upstream
// names resolve to a closed port).
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { freePort, ROOT, StopWaiting, waitFor, workDir, type Started } from './env/base.ts';
import { createCluster, ensureNamespace, extensionKubeconfig, generatePatchesRequest, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig } from './env/capi.ts';
import { startCaaph } from './env/caaph.ts';
import { components } from './env/components.ts';
import { BUNDLE, RUNTIMES, startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';
import { NodeCluster, NODE_HOST, SERVICE_CIDR } from './env/node-cluster.ts';
import { isKubeadmStep, renderedBootstrap, runCloudConfig, startCabpk } from './env/bootstrap.ts';
import * as yaml from 'js-yaml';
import type { KubeNode } from './env/kube-node.ts';
import { appImage, writeLayoutDirectory } from './env/node-images.ts';
import { makeCa, makeLeaf } from './env/pki.ts';
import type { KubeApi } from './env/kube.ts';
import { startRegistry, type Registry } from './env/registry.ts';
import { sha256 } from './env/oci.ts';
import { htpasswdFor, newPassword } from '../../src/addon/credentials.ts';

const test = realSuite('real nodes: kubelets run the registry and pull through the mirror');
const PROVIDER = 'capi-registry-addon-system';
const WRITER_IP = '10.96.0.20';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');

let env: Env;
let cluster: NodeCluster;
let ext: Extension;
let caaph: Started;
let cabpk: Started;
const cloudConfigs: Record<string, string> = {};
let cp: KubeNode;
let worker: KubeNode;
let workload: KubeApi;
const figures: Record<string, number> = {};
let acpiAt = 0;
const mgmt = () => env.management!;
// The platform's default source (serve --default-source): a Distribution with its own CA and htpasswd on the test's address.
let source: Registry;
const sourceLogin = { username: 'mirror', password: newPassword() };
const WRONG_PASSWORD = `wrong-${newPassword()}`;
const SEEDED = 'docker.io/library/seeded:1.0';

/** The source registry: its own CA, a certificate for the test's address, htpasswd; `library/seeded:1.0` in it. */
async function startSource(): Promise<Registry> {
  const ca = makeCa('source-ca', 'ec', 30);
  const leaf = makeLeaf(ca, 'source', { sans: [`IP:${NODE_HOST}`] });
  const htpasswd = join(workDir('source'), 'htpasswd');
  writeFileSync(htpasswd, htpasswdFor({ node: sourceLogin, push: { username: 'unused', password: newPassword() }, previous: [] }, undefined));
  const registry = await startRegistry('default-source', { certFile: leaf.certFile, keyFile: leaf.keyFile, ca: ca.pem }, {
    host: NODE_HOST,
    config: (addr, data) => [
      'version: 0.1', 'log: {level: info, accesslog: {disabled: false}}', `storage: {filesystem: {rootdirectory: ${data}}}`,
      `auth: {htpasswd: {realm: source, path: ${htpasswd}}}`, `http: {addr: "${addr}", secret: s, tls: {certificate: ${leaf.certFile}, key: ${leaf.keyFile}}}`,
    ].join('\n'),
  });
  const image = appImage('seeded 1.0');
  const mediaTypes = JSON.parse(image.manifest.toString());
  const blob = (mediaType: string, bytes: Buffer) => ({ digest: sha256(bytes), mediaType, bytes });
  await registry.push('library/seeded', '1.0', { manifest: blob(mediaTypes.mediaType, image.manifest), config: blob(mediaTypes.config.mediaType, image.config), layers: [blob(mediaTypes.layers[0].mediaType, image.layer)] }, `Basic ${b64(`${sourceLogin.username}:${sourceLogin.password}`)}`);
  // The Secrets the platform team makes in the provider namespace (a password file's trailing newline included).
  ok(await mgmt().request('POST', `/api/v1/namespaces/${PROVIDER}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'source-ca' }, data: { 'ca.crt': b64(ca.pem) } }), 'source CA Secret');
  ok(await mgmt().request('POST', `/api/v1/namespaces/${PROVIDER}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'source-login' }, data: { username: b64(sourceLogin.username), password: b64(`${sourceLogin.password}\n`) } }), 'source login Secret');
  return registry;
}

/** Applies JSON Patch add/replace operations (what CAPI does with a GeneratePatches answer). */
function applyPatch(doc: any, ops: { op: string; path: string; value: unknown }[]) {
  for (const { op, path, value } of ops) {
    const keys = path.slice(1).split('/').map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    const parent = keys.reduce((o, k) => o[k], doc);
    if (Array.isArray(parent) && last === '-') parent.push(value);
    else if (op === 'add' && Array.isArray(parent)) parent.splice(Number(last), 0, value);
    else parent[last] = value;
  }
  return doc;
}

/** The KubeadmConfigSpec of each template after the extension's GeneratePatches (control plane, worker). */
async function patchedSpecs(): Promise<{ controlPlane: any; worker: any }> {
  const request = JSON.parse(generatePatchesRequest('default', 'c1', { services: [SERVICE_CIDR], registry: {} }));
  const reply = (await ext.post(HOOK_PATHS.GeneratePatches, JSON.stringify(request))).json();
  assert.is(reply.status, 'Success', reply.message);
  const specs: Record<string, any> = {};
  for (const item of request.items) {
    const patch = reply.items.find((p: any) => p.uid === item.uid);
    const object = patch ? applyPatch(item.object, JSON.parse(text(patch.patch))) : item.object;
    if (object.kind === 'KubeadmControlPlaneTemplate') specs.controlPlane = object.spec.template.spec.kubeadmConfigSpec;
    if (object.kind === 'KubeadmConfigTemplate') specs.worker = object.spec.template.spec;
  }
  return { controlPlane: specs.controlPlane, worker: specs.worker };
}

/**
 * A Machine of the Cluster through the real bootstrap provider: CABPK renders its cloud-init from the
 * patched KubeadmConfigSpec, and the node runs it; where kubeadm would start the kubelet, containerd is
 * restarted (the script asked for it: no systemd here) and the node joins with a kubeconfig.
 */
async function boot(node: KubeNode, spec: any, controlPlane: boolean) {
  const cloudConfig = await renderedBootstrap(mgmt(), cabpk, { namespace: 'default', cluster: 'c1', name: node.opts.name, version: components().nodeKube.version, spec, controlPlane });
  cloudConfigs[node.opts.name] = cloudConfig;
  return runCloudConfig(node, cloudConfig, async () => {
    await node.startContainerd();
    await cluster.join(node, controlPlane);
  });
}

const pod = (name: string) => workload.request('GET', `/api/v1/namespaces/capi-registry/pods/${name}`);
const ready = (p: any) => p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');

test.before(async () => {
  // The management cluster with the CRDs of the CAPI release whose bootstrap provider runs.
  env = await startEnv({ management: true, capiCrds: components().capiManagers[0]!.crds });
  cluster = new NodeCluster();
  try {
    workload = await cluster.start();
    const matrix = components().containerdMatrix;
    cp = await cluster.addNode({ name: 'cp1', containerd: matrix[0]! });
    worker = await cluster.addNode({ name: 'w1', containerd: matrix.find((m) => m.version.startsWith('v2.4'))! });

    // The extension as installed: a root CA as cert-manager makes it, the extension's certificate from it, the chart served to CAAPH.
    await ensureNamespace(mgmt(), PROVIDER);
    const root = makeCa('nodes-root', 'ec', 3650);
    ok(await mgmt().request('POST', `/api/v1/namespaces/${PROVIDER}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'registry-addon-root-ca' }, type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(root.pem), 'tls.key': b64(readFileSync(root.keyFile, 'utf8')), 'ca.crt': b64(root.pem) } }), 'root CA');
    const serving = makeLeaf(root, 'nodes-extension', { sans: ['DNS:localhost', 'IP:127.0.0.1'] });
    source = await startSource();
    const port = await freePort();
    ext = await startExtension('node', {
      port,
      pki: { caFile: root.certFile, ca: root.pem, certFile: serving.certFile, keyFile: serving.keyFile },
      args: ['--no-seed', '--kubeconfig', await extensionKubeconfig(mgmt(), 'capi-registry-addon', { providerNamespaces: [PROVIDER] }), '--capi-version', 'v1.13',
        '--provider-namespace', PROVIDER, '--chart-repo-url', `oci://127.0.0.1:${port}/charts`, '--converge-interval', '5',
        '--default-source', `https://${source.host}`, '--default-source-ca-secret', 'source-ca', '--default-source-credentials-secret', 'source-login',
        '--default-source-repositories', 'library/seeded', '--default-source-interval', '1m'],
    });
    const c1 = await createCluster(mgmt(), 'default', 'c1', { services: [SERVICE_CIDR], registry: {} });
    const bcc = (await ext.post(HOOK_PATHS.BeforeClusterCreate, lifecycleRequest('BeforeClusterCreate', c1))).json();
    assert.is(bcc.status, 'Success', bcc.message);

    // The Cluster as its infrastructure provider leaves it (endpoint, provisioned), and its CA: the one
    // the workload API server runs with (CABPK generates the other certificates it needs).
    ok(await mgmt().request('PATCH', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1', JSON.stringify({ spec: { controlPlaneEndpoint: { host: NODE_HOST, port: workload.port } } }), 'application/merge-patch+json'), 'endpoint');
    ok(await mgmt().request('PATCH', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1/status', JSON.stringify({ status: { initialization: { infrastructureProvisioned: true } } }), 'application/merge-patch+json'), 'infrastructure provisioned');
    ok(await mgmt().request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'c1-ca', labels: { 'cluster.x-k8s.io/cluster-name': 'c1' } },
      type: 'cluster.x-k8s.io/secret', data: { 'tls.crt': b64(workload.ca.pem), 'tls.key': b64(readFileSync(workload.ca.keyFile, 'utf8')) } }), 'cluster CA');
    cabpk = await startCabpk(mgmt());
    const specs = await patchedSpecs();
    await boot(cp, specs.controlPlane, true);
    await markControlPlaneInitialized(mgmt(), 'default', 'c1');
    await putKubeconfig(mgmt(), 'default', 'c1', cluster.adminKubeconfig());
    await boot(worker, specs.worker, false);
    // A boot-time pull before the registry exists: the fast-fail rule answers at once, the pull goes on to upstream (closed here).
    let bootPull: { status: number | null } = { status: 0 };
    figures.bootPullFailMs = timed(() => (bootPull = worker.run(['crictl', 'pull', 'docker.io/library/app:1.0'])));
    assert.is.not(bootPull.status, 0, 'nothing serves app:1.0 yet');

    caaph = await startCaaph(mgmt());
    acpiAt = Date.now();
    const acpi = (await ext.post(HOOK_PATHS.AfterControlPlaneInitialized, lifecycleRequest('AfterControlPlaneInitialized', c1))).json();
    assert.is(acpi.status, 'Success', acpi.message);
  } catch (err) {
    await cluster.stop();
    await env.stop();
    throw err;
  }
});

test.after(async () => {
  await caaph?.stop();
  await cabpk?.stop();
  await ext?.stop();
  await source?.stop();
  await cluster?.stop();
  await env?.stop();
  console.log(`[real nodes] figures: ${JSON.stringify(figures)}`);
});

const timed = (fn: () => unknown) => {
  const started = Date.now();
  fn();
  return Date.now() - started;
};

test('CABPK rendered each node\'s cloud-init with our files (contentFrom resolved) and our script before kubeadm, the report after', () => {
  for (const [name, cloudConfig] of Object.entries(cloudConfigs)) {
    const config = yaml.load(cloudConfig) as { write_files: { path: string; content: string }[]; runcmd: string[] };
    const files = Object.fromEntries(config.write_files.map((f) => [f.path, f.content]));
    assert.match(files['/etc/containerd/capi-registry-addon/hosts.toml'] ?? '', /\[host\."https:\/\/10\.96\.0\.20:443\/v2"\]/, `${name}: hosts.toml from the node Secret`);
    assert.match(files['/etc/containerd/capi-registry-addon/ca.crt'] ?? '', /BEGIN CERTIFICATE/, `${name}: the issuer from the CA copy`);
    assert.match(files['/etc/containerd/capi-registry-addon/enable-mirror.sh'] ?? '', /^#!\/bin\/sh/, `${name}: the script from its Secret`);
    const kubeadm = config.runcmd.findIndex(isKubeadmStep);
    assert.is(config.runcmd[0], '/etc/containerd/capi-registry-addon/enable-mirror.sh', `${name}: our script first`);
    assert.ok(kubeadm > 0, `${name}: kubeadm after it`);
    assert.is(config.runcmd.at(-1), '/etc/containerd/capi-registry-addon/enable-mirror.sh report', `${name}: the report last`);
  }
  assert.equal(Object.keys(cloudConfigs).sort(), ['cp1', 'w1']);
  assert.match(cloudConfigs.cp1!, /kubeadm init/, 'the control plane machine is an init');
  assert.match(cloudConfigs.w1!, /kubeadm join/, 'the worker joins');
});

test('CAAPH installs the chart; the scheduler places both replicas on the control plane; volumes provisioned with fsGroup; registry-0 then registry-1 Ready', async () => {
  const writer = await waitFor('registry-0 Ready', async () => {
    if (caaph.proc.exitCode !== null) throw new StopWaiting(`CAAPH exited ${caaph.proc.exitCode}`);
    const p = (await pod('registry-0')).body;
    return ready(p) ? p : undefined;
  }, 300_000, join(workDir('logs'), 'cp1-kubelet.log'));
  figures.acpiToWriterReadyMs = Date.now() - acpiAt;
  const standby = await waitFor('registry-1 Ready', async () => {
    const p = (await pod('registry-1')).body;
    return ready(p) ? p : undefined;
  }, 300_000, join(workDir('logs'), 'cp1-kubelet.log'));
  figures.acpiToStandbyReadyMs = Date.now() - acpiAt;
  for (const p of [writer, standby]) {
    assert.is(p.spec.nodeName, 'cp1', `${p.metadata.name} on the control-plane node`);
    const gc = p.status.initContainerStatuses.find((s: any) => s.name === 'garbage-collect');
    assert.is(gc.state.terminated?.exitCode, 0, 'garbage collection completed');
  }
  const claims = (await workload.request('GET', '/api/v1/namespaces/capi-registry/persistentvolumeclaims')).body.items;
  assert.is(claims.length, 2);
  for (const claim of claims) {
    assert.is(claim.status.phase, 'Bound', claim.metadata.name);
    const pv = (await workload.request('GET', `/api/v1/persistentvolumes/${claim.spec.volumeName}`)).body;
    assert.ok(pv.spec.local?.path, 'a local volume (the kubelet applies fsGroup to it)');
    const owner = cp.sh(`stat -c %g ${pv.spec.local.path}`);
    assert.is(owner.stdout.trim(), '65532', `fsGroup applied to ${pv.spec.local.path}`);
  }
});

/** Pushes `image` as docker.io/library/<repo>:<tag> through the writer's Service IP, from a node, with the push credential. */
async function push(node: KubeNode, repo: string, tag: string, label: string): Promise<string> {
  const image = appImage(label);
  const dir = workDir('push', `${repo}-${tag}`);
  writeFileSync(join(dir, 'manifest.json'), image.manifest);
  writeFileSync(join(dir, 'config'), image.config);
  writeFileSync(join(dir, 'layer-0'), image.layer);
  const pushCred = (await mgmt().request('GET', '/api/v1/namespaces/default/secrets/c1-registry-addon-push')).body.data;
  // Node's TLS wants a chain to a self-signed root (containerd's Go accepts the issuer alone, as nodes have it).
  const ca = join(dir, 'ca.crt');
  writeFileSync(ca, text((await mgmt().request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/registry-addon-root-ca`)).body.data['ca.crt']));
  // Right after the writer (re)starts, kube-proxy may not route its Service yet: a refused connection is tried again.
  return waitFor(`push of ${repo}:${tag}`, async () => {
    const r = spawnSync('ip', ['netns', 'exec', node.opts.netns.name, process.execPath, join(ROOT, 'test/integration/env/push-oci.mjs'),
      `https://${WRITER_IP}`, `library/${repo}`, tag, dir, ca, `${text(pushCred.username)}:${text(pushCred.password)}`], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0 && !/ECONNREFUSED/.test(r.stderr)) throw new StopWaiting(`push: ${r.stderr}`);
    return r.status === 0 ? r.stdout.trim() : undefined;
  }, 60_000);
}

async function runPod(name: string, image: string, node: KubeNode): Promise<{ pod: any; ms: number }> {
  const started = Date.now();
  ok(await workload.request('POST', '/api/v1/namespaces/default/pods', {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { nodeName: node.opts.name, containers: [{ name: 'app', image }], tolerations: [{ operator: 'Exists' }], terminationGracePeriodSeconds: 1 },
  }), `Pod ${name}`);
  const running = await waitFor(`Pod ${name} Running`, async () => {
    const p = (await workload.request('GET', `/api/v1/namespaces/default/pods/${name}`)).body;
    const waiting = p?.status?.containerStatuses?.[0]?.state?.waiting;
    if (waiting && /ErrImagePull|ImagePullBackOff|InvalidImageName/.test(waiting.reason ?? '') && Date.now() - started > 60_000) throw new StopWaiting(`${name}: ${waiting.reason}: ${waiting.message}`);
    return p?.status?.phase === 'Running' ? p : undefined;
  }, 120_000, join(workDir('logs'), `${node.opts.name}-kubelet.log`));
  return { pod: running, ms: Date.now() - started };
}

/** Distribution's completed reads (its JSON log lines: GET and HEAD, not the test's push) of a manifest of library/app. */
const manifestRequests = (log: string, ref: string): Record<string, any>[] => log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  .filter((r) => r.msg === 'response completed' && ['GET', 'HEAD'].includes(r['http.request.method']) && String(r['http.request.uri']).startsWith(`/v2/library/app/manifests/${ref}`));

const registryLog = async (name: string) => (await workload.request('GET', `/api/v1/namespaces/capi-registry/pods/${name}/log?container=registry`)).text;

test('an image pushed through the Service IP; Pods on the worker and the control plane pulled by their kubelets through the mirror, with the node credential', async () => {
  const digest = await push(worker, 'app', '1.0', 'app 1.0');
  assert.match(digest, /^sha256:/);
  const onWorker = await runPod('app-w1', 'docker.io/library/app:1.0', worker);
  figures.firstPullWorkerMs = onWorker.ms;
  assert.match(onWorker.pod.status.containerStatuses[0].imageID, new RegExp(digest.slice(7)));
  const onCp = await runPod('app-cp1', 'docker.io/library/app:1.0', cp);
  figures.firstPullControlPlaneMs = onCp.ms;
  const pulls = manifestRequests(await registryLog('registry-0'), '1.0');
  // Each node's own containerd (1.6 on cp1, 2.4 on w1) fetched the manifest.
  const agents = new Set(pulls.map((r) => /^containerd\/(\d+\.\d+)/.exec(r['http.request.useragent'])?.[1]));
  assert.equal([...agents].sort(), [cp.opts.containerd.version, worker.opts.containerd.version].map((v) => /(\d+\.\d+)/.exec(v)![1]).sort(), 'the writer served both nodes\' containerd');
  assert.ok(pulls.every((r) => r['auth.user.name'] === 'node' && r['http.response.status'] === 200), 'with the node credential');
});

test('a standby on a fresh volume stays not Ready until its startup probe finds the writer\'s tags, then becomes Ready and serves them', async () => {
  const old = (await pod('registry-1')).body.metadata.uid;
  ok(await workload.request('DELETE', '/api/v1/namespaces/capi-registry/persistentvolumeclaims/data-registry-1'), 'delete the claim');
  ok(await workload.request('DELETE', '/api/v1/namespaces/capi-registry/pods/registry-1?gracePeriodSeconds=1'), 'delete registry-1');
  const started = Date.now();
  const fresh = await waitFor('the new registry-1 Ready', async () => {
    const p = (await pod('registry-1')).body;
    return p?.metadata?.uid !== old && ready(p) ? p : undefined;
  }, 300_000, join(workDir('logs'), 'cp1-kubelet.log'));
  figures.freshStandbyReadyMs = Date.now() - started;
  const events = (await workload.request('GET', `/api/v1/namespaces/capi-registry/events?fieldSelector=involvedObject.uid=${fresh.metadata.uid}`)).body.items;
  const refused = events.filter((e: any) => e.reason === 'Unhealthy' && /Startup probe failed/.test(e.message));
  assert.ok(refused.some((e: any) => /not in sync yet: library\/app:1\.0/.test(e.message)), `the kubelet's startup probe said what was missing: ${JSON.stringify(events.map((e: any) => e.message))}`);
  assert.is(await servedBy(worker, fresh.status.podIP, '1.0'), 200, 'Ready means it holds the writer\'s tags');
});

test('status says healthy for the Cluster (exit 0)', async () => {
  const run = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'status', '--kubeconfig', mgmt().kubeconfig, '-o', 'json'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(run.status, 0, `${run.stdout}\n${run.stderr}`);
  const [report] = JSON.parse(run.stdout);
  assert.is(report.cluster, 'default/c1');
  assert.is(report.replicas, '2/2');
});

/** The node credential and the issuer, for reading a replica directly from a node. */
async function nodeAccess() {
  const node = (await mgmt().request('GET', '/api/v1/namespaces/default/secrets/c1-registry-addon-node')).body.data;
  return { user: `${text(node.username)}:${text(node.password)}` };
}

/** A manifest as one replica (by pod IP) serves it, asked from `node`. */
async function servedBy(node: KubeNode, podIp: string, ref: string): Promise<number> {
  const { user } = await nodeAccess();
  const r = node.run(['curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', '-u', user, '-H', 'accept: application/vnd.oci.image.manifest.v1+json', `https://${podIp}:5000/v2/library/app/manifests/${ref}`]);
  return Number(r.stdout);
}

const status = () => {
  const run = spawnSync(RUNTIMES.node![0]!, [BUNDLE, 'status', '--kubeconfig', mgmt().kubeconfig, '-o', 'json'], { encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, report: run.stdout.trim().startsWith('[') ? JSON.parse(run.stdout)[0] : undefined, output: `${run.stdout}\n${run.stderr}` };
};

test('registry-0 down: status says unhealthy with the reason, a new Pod is pulled from the standby; registry-0 back: read-your-push holds', async () => {
  const standbyIp = (await pod('registry-1')).body.status.podIP;
  await waitFor('app:1.0 synced to registry-1', async () => ((await servedBy(worker, standbyIp, '1.0')) === 200 ? true : undefined), 180_000);
  // The writer cannot come back while its node is cordoned (the registry runs only on the control plane).
  const cordon = (on: boolean) => workload.request('PATCH', '/api/v1/nodes/cp1', JSON.stringify({ spec: { unschedulable: on } }), 'application/merge-patch+json');
  ok(await cordon(true), 'cordon');
  try {
    await writerDown();
  } finally {
    ok(await cordon(false), 'uncordon');
  }
  await waitFor('registry-0 Ready again', async () => (ready((await pod('registry-0')).body) ? true : undefined), 180_000);
  const digest = await push(worker, 'app', '1.1', 'app 1.1');
  const fresh = await runPod('app-w1-fresh', 'docker.io/library/app:1.1', worker);
  assert.match(fresh.pod.status.containerStatuses[0].imageID, new RegExp(digest.slice(7)), 'the tag just pushed is pulled at once');
  await waitFor('status: healthy again', async () => (status().code === 0 ? true : undefined), 120_000);
});

async function writerDown() {
  ok(await workload.request('DELETE', '/api/v1/namespaces/capi-registry/pods/registry-0?gracePeriodSeconds=1'), 'delete registry-0');
  await waitFor('registry-0 gone', async () => ((await pod('registry-0')).body?.status?.phase !== 'Running' ? true : undefined), 60_000);
  const down = await waitFor('status: unhealthy', async () => { const s = status(); return s.code !== 0 ? s : undefined; }, 60_000);
  assert.is(down.code, 3, down.output);
  assert.is(down.report.healthy, false);
  assert.is(down.report.replicas, '1/2');
  assert.match(down.report.problems.join('\n'), /1 of 2 registry replica\(s\) not Ready/, down.output);

  ok(await workload.request('DELETE', '/api/v1/namespaces/default/pods/app-w1?gracePeriodSeconds=0'), 'delete app-w1');
  await waitFor('app-w1 gone', async () => ((await workload.request('GET', '/api/v1/namespaces/default/pods/app-w1')).status === 404 ? true : undefined), 60_000);
  const rmi = worker.run(['crictl', 'rmi', 'docker.io/library/app:1.0']);
  assert.is(rmi.status, 0, rmi.output);
  const before = manifestRequests(await registryLog('registry-1'), '1.0').length;
  const failover = await runPod('app-w1-failover', 'docker.io/library/app:1.0', worker);
  figures.failoverPullMs = failover.ms;
  const served = manifestRequests(await registryLog('registry-1'), '1.0').slice(before);
  assert.ok(served.some((r) => r['http.request.host'] === '10.96.0.21:443' && r['http.response.status'] === 200), `the standby served the pull through its Service IP: ${JSON.stringify(served)}`);
  assert.ok(served.every((r) => r['auth.user.name'] === 'node'), 'with the node credential');
}

test('each node reported its mirror on its Node with its own kubelet credential', async () => {
  for (const name of ['cp1', 'w1']) {
    const node = (await workload.request('GET', `/api/v1/nodes/${name}`)).body;
    assert.ok(node.metadata.annotations?.['capi-registry-addon.io/mirror'], `${name}: ${JSON.stringify(node.metadata.annotations)}`);
    const writes = workload.audit().filter((e) => e.objectRef?.resource === 'nodes' && e.objectRef?.name === name && e.verb === 'patch' && e.user?.username === `system:node:${name}` && e.userAgent?.startsWith('kubectl'));
    assert.ok(writes.length >= 1, `${name}: the annotation came from kubectl as system:node:${name}`);
  }
});

test('BeforeClusterUpgrade renews the certificate: the Pods roll and serve it; nodes keep pulling', async () => {
  const tls = async () => (await workload.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).body.data['tls.crt'] as string;
  const old = await tls();
  // The user upgrades the Cluster; CAPI then calls BeforeClusterUpgrade naming the new version.
  const c1 = ok(await mgmt().request('PATCH', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1', JSON.stringify({ spec: { topology: { version: 'v1.34.0' } } }), 'application/merge-patch+json'), 'upgrade').body;
  const bcu = (await ext.post(HOOK_PATHS.BeforeClusterUpgrade, lifecycleRequest('BeforeClusterUpgrade', c1))).json();
  assert.is(bcu.status, 'Success', bcu.message);
  const renewed = await waitFor('registry-tls renewed', async () => { const t = await tls(); return t !== old ? t : undefined; }, 120_000);
  // The leaf only (tls.crt is leaf then issuer): the whole chain's base64 decoded at once gave the leaf's
  // hash only when the leaf's base64 ended in padding, and hung this test otherwise.
  const fingerprint = (pem: string) => createHash('sha256').update(Buffer.from(pem.split('-----END CERTIFICATE-----')[0]!.replace(/-----[^-]+-----|\s/g, ''), 'base64')).digest('hex');
  const want = fingerprint(text(renewed));
  await waitFor('both replicas serve the renewed certificate and are Ready', async () => {
    for (const name of ['registry-0', 'registry-1']) {
      const p = (await pod(name)).body;
      if (!ready(p)) return undefined;
      const served = cp.sh(`echo | openssl s_client -connect ${p.status.podIP}:5000 2>/dev/null | openssl x509 -outform der | sha256sum`).stdout.split(' ')[0];
      if (served !== want) return undefined;
    }
    return true;
  }, 600_000, caaph.logFile);
  const digest = await push(worker, 'app', '1.2', 'app 1.2');
  const after = await runPod('app-cp1-renewed', 'docker.io/library/app:1.2', cp);
  assert.match(after.pod.status.containerStatuses[0].imageID, new RegExp(digest.slice(7)));
});

const sourcesMark = async () => (await mgmt().request('GET', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1')).body.metadata.annotations?.['capi-registry-addon.io/sources'] as string | undefined;

test('the platform\'s default source fills the registry: a Pod runs the copied image; the mark, status and metrics say so', async () => {
  // The writer's sidecar copies within a minute of starting; the next pass reads its result.
  const mark = await waitFor('the sources mark reports a pass', async () => {
    const m = await sourcesMark();
    return m && !m.includes('no pass reported yet') ? m : undefined;
  }, 240_000);
  assert.match(mark, /^default at \S+: [01] of 1 selected tag\(s\) copied/, mark);
  assert.not.match(mark, /FAILED|Secret problem/);
  const seeded = await runPod('seeded-w1', SEEDED, worker);
  figures.seededPodMs = seeded.ms;
  const metrics = (await ext.request('GET', '/metrics')).text;
  const copied = Number(/capi_registry_addon_source_images_copied_total\{source="default"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(copied >= 1, `images copied counted: ${copied}`);
  const { report } = status();
  assert.equal(report.sources, [mark]);
});

test('a wrong source password: the pass fails, nothing copied is removed; the mark, an Event and status name the source; no password anywhere', async () => {
  ok(await mgmt().request('PATCH', `/api/v1/namespaces/${PROVIDER}/secrets/source-login`, JSON.stringify({ data: { password: b64(WRONG_PASSWORD) } }), 'application/merge-patch+json'), 'wrong password');
  // The sources Secret changes, the pods roll (regbot reads its logins at start), the new writer's pass fails.
  const mark = await waitFor('the mark names the failing source', async () => {
    const m = await sourcesMark();
    return m && /FAILED/.test(m) ? m : undefined;
  }, 600_000, caaph.logFile);
  assert.match(mark, /^default at \S+: 0 of 0 selected tag\(s\) copied .*; FAILED: listing 10\.250\.0\.1:\d+ failed, nothing copied or removed: .*(401|unauthorized)/i);
  // The Event is written just after the mark (off the pass's path).
  await waitFor('a RegistryAddonSourceFailed Event on c1', async () => {
    const events = (await mgmt().request('GET', '/api/v1/namespaces/default/events')).body.items.filter((e: any) => e.reason === 'RegistryAddonSourceFailed');
    return events.some((e: any) => /^source default: listing .* failed/.test(e.message) && e.involvedObject.name === 'c1') ? true : undefined;
  }, 30_000);
  const failures = Number(/capi_registry_addon_source_failures_total\{source="default"\} (\d+)/.exec((await ext.request('GET', '/metrics')).text)?.[1]);
  assert.ok(failures >= 1, `failed passes counted: ${failures}`);
  const after = status();
  assert.is(after.code, 3, after.output);
  assert.ok(after.report.problems.some((p: string) => p.startsWith('source default at')), after.output);
  // Nothing removed: the copy is still pulled (on the other node now).
  await runPod('seeded-cp1', SEEDED, cp);
  // The passwords: only in the Secrets that hold them.
  const proxy = JSON.stringify((await mgmt().request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/default/helmchartproxies')).body);
  const cluster1 = JSON.stringify((await mgmt().request('GET', '/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/c1')).body);
  const eventText = JSON.stringify((await mgmt().request('GET', '/api/v1/namespaces/default/events')).body);
  const sidecarLog = String((await workload.request('GET', '/api/v1/namespaces/capi-registry/pods/registry-0/log?container=sync')).text ?? '');
  for (const [where, body] of Object.entries({ 'HelmChartProxy (Helm values)': proxy, 'Cluster (marks)': cluster1, Events: eventText, 'extension log': ext.logs, metrics: (await ext.request('GET', '/metrics')).text, 'status output': after.output, 'sidecar log': sidecarLog })) {
    for (const secret of [sourceLogin.password, WRONG_PASSWORD]) assert.not.ok(body.includes(secret) || body.includes(b64(secret)), `a source password in the ${where}`);
  }
  const stored = (await workload.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-sources')).body.data;
  assert.is(text(stored['default.password']), WRONG_PASSWORD, 'the workload Secret carries the current one, trailing newline dropped');
});

/** `seed` from the bundle on `runtime`, with the management kubeconfig, into c1. */
function seedRun(runtime: string, paths: string[]) {
  const [cmd, ...pre] = RUNTIMES[runtime]!;
  const started = Date.now();
  const run = spawnSync(cmd!, [...pre, BUNDLE, 'seed', '--kubeconfig', mgmt().kubeconfig, '--cluster', 'default/c1', ...paths], {
    encoding: 'utf8', timeout: 600_000, env: { PATH: process.env.PATH ?? '', HOME: workDir('seed-home') },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, ms: Date.now() - started, output: `exit ${run.status}\n${run.stdout}${run.stderr}` };
}

test('seed on Node, Deno and Bun: an oci-archive and a layout directory over the port-forward; a second run pushes nothing; Pods run what was seeded', async () => {
  for (const runtime of Object.keys(RUNTIMES)) {
    const dir = workDir('seed', runtime);
    const archived = appImage(`archived-${runtime}`, { name: `docker.io/library/seeded-archive:${runtime}` });
    writeFileSync(join(dir, 'images.oci.tar'), archived.archive);
    writeLayoutDirectory(join(dir, 'layout'), [appImage(`layout-${runtime}`, { name: `docker.io/team/seeded-layout:${runtime}` })]);
    const paths = [join(dir, 'images.oci.tar'), join(dir, 'layout')];
    const first = seedRun(runtime, paths);
    assert.is(first.code, 0, first.output);
    assert.match(first.stderr, new RegExp(`default/c1  library/seeded-archive:${runtime}  done: 2 blob\\(s\\) pushed`), first.output);
    assert.match(first.stderr, new RegExp(`default/c1  team/seeded-layout:${runtime}  done: `), first.output);
    assert.match(first.stdout, /^seed: 2 image\(s\) into 1 Cluster\(s\): 4 blob\(s\) pushed .*; 0 failed$/m, first.output);
    const again = seedRun(runtime, paths);
    assert.is(again.code, 0, again.output);
    assert.is(again.stderr.match(/unchanged \(already there\)/g)?.length, 2, again.output);
    assert.match(again.stdout, /: 0 blob\(s\) pushed/, again.output);
    figures[`seed${runtime}Ms`] = first.ms;
    await runPod(`seeded-${runtime}`, `docker.io/library/seeded-archive:${runtime}`, worker);
    await runPod(`seeded-layout-${runtime}`, `docker.io/team/seeded-layout:${runtime}`, cp);
  }
});

test('seed refuses a truncated archive before pushing anything; throughput next to regctl over kubectl port-forward', async () => {
  const dir = workDir('seed', 'bulk');
  const size = 64 * 1024 * 1024;
  const bulk = appImage('bulk', { name: 'docker.io/library/seeded-bulk:1', padding: size });
  const whole = join(dir, 'bulk.oci.tar');
  writeFileSync(whole, bulk.archive);
  const cut = join(dir, 'bulk-cut.oci.tar');
  copyFileSync(whole, cut);
  truncateSync(cut, Math.floor(statSync(whole).size / 2));
  const refused = seedRun('node', [cut]);
  assert.is(refused.code, 4, refused.output);
  assert.match(refused.stdout, new RegExp(`seed: refused, nothing pushed: ${cut.replace(/[/.]/g, '\\$&')}: truncated at blobs/sha256/`), refused.output);
  const writerIp = (await pod('registry-0')).body.status.podIP;
  const { user } = await nodeAccess();
  const head = cp.run(['curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', '-u', user, '-H', 'accept: application/vnd.oci.image.manifest.v1+json', `https://${writerIp}:5000/v2/library/seeded-bulk/manifests/1`]);
  assert.is(head.stdout, '404', 'nothing of the truncated archive is pullable');

  const seeded = seedRun('node', [whole]);
  assert.is(seeded.code, 0, seeded.output);
  // The baseline: regctl image copy from the same layout, over kubectl port-forward, same run.
  writeLayoutDirectory(join(dir, 'layout'), [bulk]);
  const forward = spawn(components().nodeKube.kubectl, ['--kubeconfig', workload.kubeconfig, '-n', 'capi-registry', 'port-forward', 'pod/registry-0', ':5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let said = '';
    forward.stdout.on('data', (d) => (said += d));
    const port = await waitFor('kubectl port-forward', async () => /127\.0\.0\.1:(\d+) -> 5000/.exec(said)?.[1], 30_000);
    const push = (await mgmt().request('GET', '/api/v1/namespaces/default/secrets/c1-registry-addon-push')).body.data;
    const ca = text((await mgmt().request('GET', '/api/v1/namespaces/default/secrets/c1-registry-addon-ca')).body.data['ca.crt']);
    const home = workDir('seed', 'regctl');
    writeFileSync(join(home, 'config.json'), JSON.stringify({ hosts: { [`127.0.0.1:${port}`]: { tls: 'enabled', regcert: ca, user: text(push.username), pass: text(push.password) } } }));
    const started = Date.now();
    const copy = spawnSync(components().regctl.path, ['image', 'copy', `ocidir://${join(dir, 'layout')}:bulk`, `127.0.0.1:${port}/library/regctl-bulk:1`], { encoding: 'utf8', timeout: 600_000, env: { PATH: process.env.PATH ?? '', HOME: home, REGCTL_CONFIG: join(home, 'config.json') } });
    const regctlMs = Date.now() - started;
    assert.is(copy.status, 0, `${copy.stdout}${copy.stderr}`);
    const mibs = (ms: number) => Number(((bulk.layerBytes / 1048576) / (ms / 1000)).toFixed(1));
    figures.seedBulkMiBps = mibs(seeded.ms);
    figures.regctlBulkMiBps = mibs(regctlMs);
    console.log(`  ${(bulk.layerBytes / 1048576).toFixed(1)} MiB layer: seed (Node, its own WebSocket port-forward, process start included) ${seeded.ms} ms = ${mibs(seeded.ms)} MiB/s; regctl image copy over kubectl port-forward ${regctlMs} ms = ${mibs(regctlMs)} MiB/s; ratio ${(seeded.ms / regctlMs).toFixed(2)}`);
  } finally {
    forward.kill();
  }
  await runPod('seeded-bulk', 'docker.io/library/seeded-bulk:1', worker);
});

test.run();

