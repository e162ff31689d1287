// The registry's data across replicas, as nodes see it: three replicas of the real Distribution with
// the rendered config, each in a network namespace of its own (a pod: its own 127.0.0.1:5000), the real
// regbot with the rendered sync ConfigMap as its sidecar, and two nodes (containerd 1.6 and the newest)
// pulling through the CRI with the rendered hosts.toml. Services are what kube-proxy makes of them: a
// DNAT in each node to the writer (registry-0) and to the node's standby replica (ClientIP affinity
// pins a node to one). Pushes go to the writer Service's only endpoint.
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import * as assert from 'uvu/assert';
import { basicAuthorization, htpasswdFor } from '../../src/addon/credentials.ts';
import { POD, podHost, REGISTRY } from '../../src/render/metadata.ts';
import { syncConfigs } from '../../src/render/sync.ts';
import { GC_SCRIPT } from '../../src/render/workload.ts';
import { realSuite } from './env/suite.ts';
import { startProcess, waitFor, workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { clusterMirror } from './env/mirror.ts';
import { nodeDir, TestNode, type NetNs } from './env/node.ts';
import { makeBulkImage, makeImage, sha256 } from './env/oci.ts';
import { PodNetwork } from './env/pod-network.ts';
import { SyncSidecar } from './env/regbot.ts';
import { httpRequest, inRenderedPod, startRenderedRegistry, type Registry } from './env/registry.ts';

const test = realSuite('replica data: read-your-push, one state per tag, deletes everywhere (Distribution, regbot, containerd CRI)');
const SUBNET = '10.213.0';
const podIp = (i: number) => `${SUBNET}.${10 + i}`;
const podHostPart = (i: number) => 10 + i;
const REPLICAS = 3;
const NAMES = Array.from({ length: REPLICAS }, (_, i) => podHost(`${REGISTRY.name}-${i}`, 'cluster.local'));

let m: Awaited<ReturnType<typeof clusterMirror>>;
let net: PodNetwork;
const podNs: NetNs[] = [];
const pods: (Registry | undefined)[] = [];
const sidecars: SyncSidecar[] = [];
const nodes: { node: TestNode; standby: number }[] = [];
let push: string;
let pull: string;
/** Cluster DNS for the sidecars: each replica's headless name. */
const hosts = Object.fromEntries(NAMES.map((n, i) => [n, podIp(i)]));

const startPod = async (i: number, name = `data-${i}`) => {
  pods[i] = await startRenderedRegistry(name, components().registry.path, m.config, m.tls, `${podIp(i)}:${REGISTRY.containerPort}`, NAMES[i], htpasswdFor(m.creds, undefined), { netns: podNs[i]! });
  return pods[i]!;
};
const writer = () => pods[0]!;
const ref = (tag: string) => `docker.io/library/app:${tag}`;
/** The digest containerd recorded for a pulled image (what the kubelet runs). */
const pulledDigest = (node: TestNode, tag: string) => {
  const r = node.crictl(['inspecti', '-o', 'json', ref(tag)]);
  if (!r.ok) return undefined;
  const digests: string[] = JSON.parse(r.stdout).status.repoDigests ?? [];
  return digests.find((d) => d.startsWith('docker.io/library/app@'))?.split('@')[1];
};
const freshPull = (node: TestNode, tag: string) => {
  node.crictl(['rmi', ref(tag)], 30_000);
  return node.pull(ref(tag), 60_000);
};
const nodeIp = (k: number) => `${SUBNET}.${100 + k}`;
/** Access-log lines of a replica that served `path` to node k's credential and address since `from`. */
const served = (pod: Registry, from: number, path: string, k: number) => readFileSync(pod.logFile, 'utf8').slice(from).split('\n')
  .filter((l) => l.includes(path) && l.includes('"auth.user.name":"node"') && l.includes(`"http.request.remoteaddr":"${nodeIp(k)}:`)).length;
const logLength = (pod: Registry) => readFileSync(pod.logFile, 'utf8').length;
const manifestStatus = async (pod: Registry, reference: string) => (await pod.manifest('library/app', reference, pull)).status;
const syncAll = () => {
  for (const s of sidecars.slice(1)) {
    const r = s.once(`${s.pod}.yml`);
    assert.ok(r.ok, `${s.pod}: ${r.output}`);
  }
};

test.before(async () => {
  // A short interval: the last test watches the sidecar's own loop.
  m = await clusterMirror('10.96.0.0/12', { replicas: REPLICAS, syncInterval: '2s' });
  push = basicAuthorization(m.creds.push);
  pull = basicAuthorization(m.creds.node);
  net = new PodNetwork('crd', SUBNET);
  for (let i = 0; i < REPLICAS; i++) {
    podNs.push(net.join(`p${i}`, podHostPart(i)));
    await startPod(i);
    sidecars.push(new SyncSidecar(`${REGISTRY.name}-${i}`, { config: m.syncConfig!, ca: m.tls['ca.crt'], auth: m.creds.node, hosts }, podNs[i]));
  }
  // Node a: Debian's containerd 1.6, standby registry-1; node b: the newest containerd, standby registry-2.
  const matrix = components().containerdMatrix;
  for (const [k, containerd] of [matrix[0]!, matrix.at(-1)!].entries()) {
    const ns = net.join(`n${k}`, 100 + k); // nodeIp(k)
    PodNetwork.route(ns, m.registry.layout.serviceIp, REGISTRY.servicePort, podIp(0), REGISTRY.containerPort);
    PodNetwork.route(ns, m.registry.layout.standbyIp, REGISTRY.servicePort, podIp(k + 1), REGISTRY.containerPort);
    const node = new TestNode(nodeDir('d', String(k)), { containerd: containerd.path, config: spawnSync(containerd.path, ['config', 'default'], { encoding: 'utf8' }).stdout, netns: ns });
    node.writeAddonFiles(m.files);
    const script = node.runScript();
    assert.is(script.statusFile.state, 'enabled', JSON.stringify(script.statusFile));
    await node.start();
    nodes.push({ node, standby: k + 1 });
  }
});
test.after(async () => {
  for (const { node } of nodes) await node.stop();
  for (const p of pods) await p?.stop();
  net?.remove();
});

test('read-your-push: an image pushed to the writer is pulled through the CRI on every node at once, no sync in between', async () => {
  const image = makeImage('pushed just now');
  const from = logLength(writer());
  await writer().push('library/app', 'fresh', image, push);
  const ms: number[] = [];
  for (const { node } of nodes) {
    const r = node.pull(ref('fresh'));
    assert.ok(r.ok, r.output);
    ms.push(r.ms);
    assert.is(pulledDigest(node, 'fresh'), image.manifest.digest);
  }
  for (const k of nodes.keys()) assert.ok(served(writer(), from, '/v2/library/app/manifests/fresh', k) > 0, `node ${'ab'[k]} resolved the tag at the writer`);
  for (const i of [1, 2]) assert.is(await manifestStatus(pods[i]!, 'fresh'), 404, `registry-${i} has not synced: nobody waited for it`);
  console.log(`  pulled through the CRI right after the push returned: ${ms.map((t, k) => `node ${'ab'[k]} (${k ? 'newest' : '1.6'}) ${t} ms`).join(', ')} (crictl pull, one after the other; bound: none, the writer answers first)`);
});

test('a new replica is not Ready until it holds what the writer holds; sync cost per GiB', async () => {
  for (const s of sidecars.slice(1)) {
    const probe = s.once('ready.yml');
    assert.not.ok(probe.ok, `${s.pod}: the startup probe fails while the replica is empty`);
    assert.match(probe.output, /not in sync yet: library\/app:fresh/);
  }
  const ready0 = sidecars[0]!.once('ready.yml');
  assert.ok(ready0.ok, `the writer is its own source: Ready at once\n${ready0.output}`);
  // 256 MiB of incompressible data in one blob, then one sync pass on registry-1.
  const size = 256 * 1024 * 1024;
  const bulk = makeBulkImage(size);
  await writer().push('bulk/data', '1', bulk, push);
  const first = sidecars[1]!.once('registry-1.yml');
  assert.ok(first.ok, first.output);
  assert.match(first.output, /in sync with the writer: 2 tags copied, 0 tags removed/);
  const steady = sidecars[1]!.once('registry-1.yml');
  assert.match(steady.output, /in sync with the writer: 0 tags copied, 0 tags removed/);
  assert.ok(sidecars[1]!.once('ready.yml').ok, 'registry-1 Ready after its sync');
  assert.not.ok(sidecars[2]!.once('ready.yml').ok, 'registry-2 still not');
  const bulkOnReplica = await pods[1]!.manifest('bulk/data', '1', pull);
  assert.is(bulkOnReplica.digest, bulk.manifest.digest);
  console.log(`  first sync of registry-1 (256 MiB + a small image): ${first.ms} ms → ${((first.ms / 1000) * (1024 ** 3 / size)).toFixed(1)} s per GiB; a pass with nothing to copy: ${steady.ms} ms (regbot process start included)`);
  const r2 = sidecars[2]!.once('registry-2.yml');
  assert.ok(r2.ok, r2.output);
  assert.ok(sidecars[2]!.once('ready.yml').ok);
});

test('the writer down: each node falls through to its standby replica and pulls the synced image', async () => {
  await writer().stop();
  try {
    for (const [k, { node, standby }] of nodes.entries()) {
      const from = logLength(pods[standby]!);
      const r = freshPull(node, 'fresh');
      assert.ok(r.ok, r.output);
      assert.ok(served(pods[standby]!, from, '/v2/library/app/manifests/fresh', k) > 0, `registry-${standby} served the node that stands by on it`);
    }
  } finally {
    await startPod(0);
  }
});

test('concurrent pushes of one tag end in one digest on every replica and every node', async () => {
  const [x, y] = [makeImage('racer x'), makeImage('racer y')];
  await Promise.all([writer().push('library/app', 'race', x, push), writer().push('library/app', 'race', y, push)]);
  const winner = (await writer().manifest('library/app', 'race', pull)).digest!;
  assert.ok([x.manifest.digest, y.manifest.digest].includes(winner));
  syncAll();
  for (const p of pods) assert.is((await p!.manifest('library/app', 'race', pull)).digest, winner);
  for (const { node } of nodes) {
    assert.ok(freshPull(node, 'race').ok);
    assert.is(pulledDigest(node, 'race'), winner);
  }
  // A second push of the other image moves the tag: the writer says so at once, the replicas after a pass.
  const loser = winner === x.manifest.digest ? y : x;
  await writer().push('library/app', 'race', loser, push);
  for (const { node } of nodes) {
    assert.ok(freshPull(node, 'race').ok);
    assert.is(pulledDigest(node, 'race'), loser.manifest.digest, 'read-your-push holds for a moved tag too');
  }
  syncAll();
  for (const p of pods) assert.is((await p!.manifest('library/app', 'race', pull)).digest, loser.manifest.digest);
  // Distribution keeps a manifest whose tag moved (untagged, by digest): each replica holds it exactly when the writer does.
  const kept = await manifestStatus(writer(), winner);
  for (const i of [1, 2]) assert.is(await manifestStatus(pods[i]!, winner), kept, `registry-${i}: the old manifest as on the writer`);
});

test('a delete on the writer is a delete everywhere and does not come back', async () => {
  const digest = (await writer().manifest('library/app', 'fresh', pull)).digest!;
  const del = await httpRequest(`${writer().url}/v2/library/app/manifests/${digest}`, { method: 'DELETE', headers: { authorization: push }, ca: m.tls['ca.crt'], tlsName: NAMES[0] });
  assert.is(del.status, 202, String(del.body));
  syncAll();
  for (const [i, p] of pods.entries()) {
    assert.is(await manifestStatus(p!, 'fresh'), 404, `registry-${i}: tag gone`);
    assert.is(await manifestStatus(p!, digest), 404, `registry-${i}: manifest gone`);
  }
  for (const { node } of nodes) assert.not.ok(freshPull(node, 'fresh').ok, 'no node pulls it (the writer, the standby and upstream all say no)');
  await writer().stop();
  try {
    for (const { node } of nodes) assert.not.ok(freshPull(node, 'fresh').ok, 'nor with the writer down');
  } finally {
    await startPod(0);
  }
  syncAll();
  for (const p of pods) assert.is(await manifestStatus(p!, 'fresh'), 404, 'still gone after another pass: nothing syncs back to the writer');
});

test('a writer that lost its volume: the replicas delete nothing and say why', async () => {
  await writer().stop();
  const empty = await startPod(0, 'data-0-new-volume');
  try {
    const before = await pods[1]!.manifest('library/app', 'race', pull);
    const r = sidecars[1]!.once('registry-1.yml');
    assert.not.ok(r.ok);
    assert.match(r.output, /the writer lists no repositories while this replica holds \d+: nothing deleted; restore the writer's volume or push again/);
    assert.is((await pods[1]!.manifest('library/app', 'race', pull)).digest, before.digest);
  } finally {
    await empty.stop();
    await startPod(0);
  }
});

/**
 * FAULT INJECTOR (named as such): the real writer behind a TLS proxy on the test process's leg of the pod
 * network that passes the catalog through and answers 503 to everything after it. Distribution cannot be
 * made to fail mid-pass on demand; this is the fault a writer that dies or overloads mid-pass produces.
 */
async function writerFailingAfterCatalog(port: number) {
  let served = 0;
  let failed = 0;
  const server = https.createServer({ cert: m.tls['tls.crt'], key: m.tls['tls.key'] }, async (req, res) => {
    const path = req.url ?? '/';
    if (path === '/v2/' || path.startsWith('/v2/_catalog')) {
      served++;
      const r = await httpRequest(`${writer().url}${path}`, { headers: { authorization: String(req.headers.authorization ?? '') }, ca: m.tls['ca.crt'], tlsName: NAMES[0] });
      res.writeHead(r.status, { 'content-type': String(r.headers['content-type'] ?? 'application/json'), ...(r.headers['www-authenticate'] ? { 'www-authenticate': String(r.headers['www-authenticate']) } : {}) });
      return res.end(r.body);
    }
    failed++;
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}');
  });
  await new Promise<void>((resolve) => server.listen(port, `${SUBNET}.1`, () => resolve()));
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())), counts: () => ({ served, failed }) };
}

/** Every tag a replica holds, with its digest: `repo:tag` -> digest. */
async function contents(pod: Registry): Promise<Map<string, string>> {
  const get = async (path: string) => JSON.parse((await httpRequest(`${pod.url}${path}`, { headers: { authorization: pull }, ca: m.tls['ca.crt'], tlsName: pod.tlsName })).body.toString());
  const out = new Map<string, string>();
  for (const repo of (await get('/v2/_catalog?n=1000')).repositories as string[]) {
    for (const tag of ((await get(`/v2/${repo}/tags/list`)).tags ?? []) as string[]) out.set(`${repo}:${tag}`, (await pod.manifest(repo, tag, pull)).digest ?? '?');
  }
  return out;
}

test('the writer failing mid-pass (503 after its catalog): the standby deletes nothing and says so; a pass with the writer back changes nothing', async () => {
  syncAll();
  const before = await contents(pods[2]!);
  assert.ok(before.size >= 2, `the standby holds tags to lose (${before.size})`);
  const failing = await writerFailingAfterCatalog(REGISTRY.containerPort);
  try {
    const sidecar = new SyncSidecar(`${REGISTRY.name}-2-writer-failing`, { config: m.syncConfig!, ca: m.tls['ca.crt'], auth: m.creds.node, hosts: { ...hosts, [NAMES[0]!]: `${SUBNET}.1` } }, podNs[2]);
    const r = await sidecar.onceAsync(`${REGISTRY.name}-2.yml`);
    const counts = failing.counts();
    assert.ok(counts.served >= 1 && counts.failed >= 1, `the catalog went through, then the writer failed: ${JSON.stringify(counts)}\n${r.output.slice(-1500)}`);
    assert.not.ok(r.ok, r.output);
    assert.match(r.output, /the writer did not answer in full \(.*\[http 503\].*\): nothing copied or deleted this pass; the next pass tries again/, r.output);
    assert.not.match(r.output, /tags removed/);
    const ready = await sidecar.onceAsync('ready.yml');
    assert.ok(ready.ok, `a standby that holds content stays Ready while the writer fails: ${ready.output}`);
  } finally {
    await failing.close();
  }
  assert.equal(await contents(pods[2]!), before, 'every tag still there, at the same digest');
  const again = sidecars[2]!.once(`${REGISTRY.name}-2.yml`);
  assert.ok(again.ok, again.output);
  assert.match(again.output, /0 tags copied, 0 tags removed/);
});

test('garbage collection as each pod runs it, before its registry starts: the volume keeps exactly what the tags reference; nodes pull from a standby meanwhile', async () => {
  // To reclaim: the 256 MiB image, its tag and manifest deleted through the push endpoint, then synced away.
  const bulk = (await writer().manifest('bulk/data', '1', pull)).digest!;
  const del = await httpRequest(`${writer().url}/v2/bulk/data/manifests/${bulk}`, { method: 'DELETE', headers: { authorization: push }, ca: m.tls['ca.crt'], tlsName: NAMES[0] });
  assert.is(del.status, 202, String(del.body));
  syncAll();
  const statefulSet = m.plan.workload.find((o: any) => o.kind === 'StatefulSet') as any;
  const [command, ...args] = statefulSet.spec.template.spec.initContainers[0].command as string[];
  assert.equal([command, ...args], ['/bin/sh', '-c', GC_SCRIPT, 'garbage-collect', '--delete-untagged', '/etc/distribution/config.yml']);
  // The image's `registry` on the PATH, as in the pod.
  const gcBin = workDir('gc-bin');
  if (!existsSync(join(gcBin, 'registry'))) symlinkSync(components().registry.path, join(gcBin, 'registry'));
  for (const i of [0, 1]) {
    const pod = pods[i]!;
    const referenced = await referencedBlobs(pod);
    const before = blobsOnDisk(pod.dataDir);
    // The pod restarts: its registry stops, the init container collects, then the registry starts again.
    await pod.stop();
    const [cmd, argv] = inRenderedPod(`data-${i}`, command!, args, podNs[i]);
    const gc = startProcess(`gc-${i}`, cmd, argv, { env: { PATH: `${gcBin}:${process.env.PATH ?? ''}`, OTEL_TRACES_EXPORTER: 'none' } });
    const started = performance.now();
    const pulls = nodes.map(({ node }) => freshPull(node, 'race'));
    const exit = await new Promise<number | null>((resolve) => (gc.proc.exitCode !== null ? resolve(gc.proc.exitCode) : gc.proc.once('exit', resolve)));
    const gcMs = Math.round(performance.now() - started);
    assert.is(exit, 0, readFileSync(gc.logFile, 'utf8').slice(-2000));
    const after = blobsOnDisk(pod.dataDir);
    assert.equal([...after.keys()].sort(), [...referenced].sort(), `registry-${i}: on disk exactly the blobs the tags reference`);
    await startPod(i);
    const failed = pulls.filter((p) => !p.ok).length;
    assert.is(failed, 0, pulls.map((p) => p.output).join('\n'));
    for (const { node } of nodes) assert.ok(freshPull(node, 'race').ok, 'and from the pod again once it serves');
    const bytes = (mapOf: Map<string, number>) => [...mapOf.values()].reduce((a, b) => a + b, 0);
    console.log(`  registry-${i}: ${before.size} blobs, ${(bytes(before) / 2 ** 20).toFixed(1)} MiB → ${after.size} blobs, ${(bytes(after) / 2 ** 20).toFixed(1)} MiB (${((bytes(before) - bytes(after)) / 2 ** 20).toFixed(1)} MiB reclaimed) in ${gcMs} ms with the pulls beside it; ${pulls.length} pulls while it was down, ${failed} failed`);
    if (i === 0) assert.ok(bytes(before) - bytes(after) >= 256 * 2 ** 20, 'the deleted image\'s bytes came back');
  }
});

test('a catalog longer than one page: a standby copies every repository and deletes only what the writer dropped (pages of 2 here, 1000 as shipped)', async () => {
  const paged = new SyncSidecar('registry-2-paged', { config: syncConfigs(m.registry.layout, m.registry.config, 2), ca: m.tls['ca.crt'], auth: m.creds.node, hosts }, podNs[2]);
  const names = ['paged/a', 'paged/b', 'paged/c', 'paged/d', 'paged/e'];
  for (const name of names) await writer().push(name, '1', makeImage(name), push);
  const first = paged.once(`${REGISTRY.name}-2.yml`);
  assert.ok(first.ok, first.output);
  for (const name of names) assert.is((await pods[2]!.manifest(name, '1', pull)).status, 200, `${name} copied from a later page`);
  const digest = (await writer().manifest('paged/c', '1', pull)).digest!;
  assert.is((await httpRequest(`${writer().url}/v2/paged/c/manifests/${digest}`, { method: 'DELETE', headers: { authorization: push }, ca: m.tls['ca.crt'], tlsName: NAMES[0] })).status, 202);
  const second = paged.once(`${REGISTRY.name}-2.yml`);
  assert.ok(second.ok, second.output);
  assert.match(second.output, /0 tags copied, 1 tags removed/);
  for (const name of names) assert.is((await pods[2]!.manifest(name, '1', pull)).status, name === 'paged/c' ? 404 : 200, name);
  assert.is((await pods[2]!.manifest('library/app', 'race', pull)).status, 200, 'the first page kept too');
  assert.ok(paged.once('ready.yml').ok);
});

test('Prometheus reaches each replica\'s metrics on the pod network (the rendered config); the same listener serves pprof, which is why the chart limits it with a NetworkPolicy', async () => {
  for (let i = 0; i < REPLICAS; i++) {
    // A request of our own (earlier tests restarted some pods, which resets their counters).
    assert.is((await pods[i]!.manifest('library/app', 'v1', pull)).status > 0, true);
    const scrape = await httpRequest(`http://${podIp(i)}:${POD.debugPort}${POD.metricsPath}`, {});
    assert.is(scrape.status, 200, `replica ${i}`);
    const text = scrape.body.toString('utf8');
    assert.ok(/^registry_http_requests_total\{[^}]*handler="manifest"[^}]*\} [1-9]/m.test(text), `replica ${i}: ${text.split('\n').filter((l) => l.startsWith('registry_http_requests')).join(' | ')}`);
  }
  assert.is((await httpRequest(`http://${podIp(0)}:${POD.debugPort}/debug/pprof/`, {})).status, 200);
  const policy = (m.plan.workload as any[]).find((o) => o.kind === 'NetworkPolicy');
  assert.equal(policy.spec.ingress[1].ports, [{ protocol: 'TCP', port: POD.debugPort }]);
  assert.equal(policy.spec.ingress[1].from[0].namespaceSelector.matchExpressions[0].values, ['monitoring']);
});

test("the sidecar's own loop (regbot server, the rendered interval) brings a push to a replica", async () => {
  const loop = sidecars[2]!.server();
  try {
    const image = makeImage('for the loop');
    await writer().push('library/app', 'loop', image, push);
    const pushed = performance.now();
    await waitFor('registry-2 holds the push', async () => ((await pods[2]!.manifest('library/app', 'loop', pull)).digest === image.manifest.digest ? true : undefined), 60_000, loop.logFile);
    console.log(`  push → on registry-2 by its sidecar loop (interval 2s): ${Math.round(performance.now() - pushed)} ms`);
  } finally {
    await loop.stop();
  }
});

/** The blobs under a Distribution volume, digest → bytes. */
function blobsOnDisk(dataDir: string): Map<string, number> {
  const root = join(dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  const out = new Map<string, number>();
  if (!existsSync(root)) return out;
  for (const prefix of readdirSync(root)) {
    for (const hex of readdirSync(join(root, prefix))) {
      const data = join(root, prefix, hex, 'data');
      if (existsSync(data)) out.set(`sha256:${hex}`, statSync(data).size);
    }
  }
  return out;
}

/** Every blob the registry's tags reference (manifest, config, layers), through its API. */
async function referencedBlobs(pod: Registry): Promise<Set<string>> {
  const get = async (path: string) => (await httpRequest(`${pod.url}${path}`, { headers: { authorization: pull, accept: 'application/vnd.oci.image.manifest.v1+json' }, ca: m.tls['ca.crt'], tlsName: pod.tlsName })).body;
  const out = new Set<string>();
  for (const repo of JSON.parse(String(await get('/v2/_catalog'))).repositories as string[]) {
    for (const tag of (JSON.parse(String(await get(`/v2/${repo}/tags/list`))).tags ?? []) as string[]) {
      const bytes = await get(`/v2/${repo}/manifests/${tag}`);
      const manifest = JSON.parse(String(bytes));
      out.add(sha256(bytes));
      for (const d of [manifest.config, ...manifest.layers]) out.add(d.digest);
    }
  }
  return out;
}

test.run();
