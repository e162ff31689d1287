// The writer fills itself from a source registry: the real Distribution as the source (TLS with its own
// CA, htpasswd), the rendered writer and standby (Distribution, each in a pod's network namespace) with
// the real regbot running the rendered sync configs, and a node (the newest containerd) pulling through
// the CRI with upstream unreachable. The source holds a multi-arch index, single-platform images and a
// referrer artifact stored the way OCI 1.1 clients store one on a registry without the referrers API
// (Distribution 3.1.2 has none): an index under the digest tag `sha256-<subject>`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { basicAuthorization, htpasswdFor, newPassword } from '../../src/addon/credentials.ts';
import { issueServerCertificate } from '../../src/pki/server-cert.ts';
import { podHost, REGISTRY } from '../../src/render/metadata.ts';
import { syncConfigs } from '../../src/render/sync.ts';
import { readSources } from '../../src/render/sources.ts';
import { sourceResults, type SourceResult } from '../../src/observe/source-progress.ts';
import { realSuite } from './env/suite.ts';
import { freePort, waitFor, workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { clusterMirror } from './env/mirror.ts';
import { nodeDir, TestNode, type NetNs } from './env/node.ts';
import { makeBulkImage, makeImage, sha256, type Blob, type OciImage } from './env/oci.ts';
import { PodNetwork } from './env/pod-network.ts';
import { SyncSidecar } from './env/regbot.ts';
import { httpRequest, startRegistry, startRenderedRegistry, type Registry } from './env/registry.ts';
import { writeFileSync } from 'node:fs';

const test = realSuite('sources: the writer copies the selected set from a source registry; standbys and nodes follow (Distribution, regbot, containerd CRI)');
const SUBNET = '10.215.0';
const SOURCE_HOST = `${SUBNET}.1`;
const podIp = (i: number) => `${SUBNET}.${10 + i}`;
const NAMES = [0, 1].map((i) => podHost(`${REGISTRY.name}-${i}`, 'cluster.local'));
const hosts = Object.fromEntries(NAMES.map((n, i) => [n, podIp(i)]));
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let m: Awaited<ReturnType<typeof clusterMirror>>;
let net: PodNetwork;
let source: Registry;
let sourcePort: number;
let sourceTls: { certFile: string; keyFile: string; ca: string };
const sourceUser = { username: 'mirror', password: newPassword() };
let sourceAuth: string;
const pods: Registry[] = [];
const podNs: NetNs[] = [];
let writerSidecar: SyncSidecar;
let standbySidecar: SyncSidecar;
let node: TestNode;
let push: string;
let pull: string;
let multi: { digest: string; children: OciImage[] };
let single: OciImage;
let referrer: Blob;

const sourceEntry = (over: Record<string, unknown> = {}) => ({
  name: 'corp', url: `https://${SOURCE_HOST}:${sourcePort}`, caSecretRef: { name: 'corp-registry' }, credentialsSecretRef: { name: 'corp-registry' },
  repositories: ['library/*', 'team/tool'], tags: ['1.*', 'latest'], ...over,
});
/** The writer's sync config for these source entries, rendered as the chart carries it. */
const writerConfig = (entries: Record<string, unknown>[]) => {
  const errors: string[] = [];
  const sources = readSources(entries, 'sources', errors);
  assert.equal(errors, []);
  return syncConfigs(m.registry.layout, { ...m.registry.config, sources });
};
const sourceSecret = (password = sourceUser.password) => ({ 'corp.ca.crt': sourceTls.ca, 'corp.username': sourceUser.username, 'corp.password': password });
/** One pass of the writer's sidecar as a new pod makes it (every source due); its result lines. */
const writerPass = async (config?: Record<string, string>): Promise<{ results: SourceResult[]; output: string; ms: number }> => {
  if (config) writeConfig(writerSidecar, config);
  writerSidecar.newPod();
  const r = await writerSidecar.onceAsync(`${REGISTRY.writerPod}.yml`);
  return { results: sourceResults(r.output), output: r.output, ms: r.ms };
};
const writeConfig = (sidecar: SyncSidecar, config: Record<string, string>) => {
  for (const [name, text] of Object.entries(config)) writeFileSync(join(workDir('sidecar', sidecar.pod, 'etc'), 'regbot', 'config', name), text);
};
const tagsOn = async (r: Registry, repo: string, auth: string) => {
  const res = await httpRequest(`${r.url}/v2/${repo}/tags/list`, { headers: { authorization: auth }, ca: r.ca, tlsName: r.tlsName });
  return res.status === 200 ? ((JSON.parse(String(res.body)).tags ?? []) as string[]).sort() : [];
};
const getManifest = async (r: Registry, repo: string, ref: string, auth: string, accept = `${INDEX}, ${MANIFEST}`) => {
  const res = await httpRequest(`${r.url}/v2/${repo}/manifests/${ref}`, { headers: { authorization: auth, accept }, ca: r.ca, tlsName: r.tlsName });
  return { status: res.status, digest: res.status === 200 ? sha256(res.body) : undefined, body: res.body };
};

/** Uploads blobs (monolithic) and puts a manifest by `ref` (tag or digest). */
async function putManifest(r: Registry, repo: string, ref: string, manifest: Blob, blobs: Blob[], auth: string) {
  const headers = { authorization: auth };
  for (const b of blobs) {
    const start = await httpRequest(`${r.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers, ca: r.ca, tlsName: r.tlsName });
    assert.is(start.status, 202, String(start.body));
    const location = new URL(String(start.headers.location), r.url);
    location.searchParams.set('digest', b.digest);
    const put = await httpRequest(location.toString(), { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: b.bytes, ca: r.ca, tlsName: r.tlsName });
    assert.is(put.status, 201, String(put.body));
  }
  const res = await httpRequest(`${r.url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { ...headers, 'content-type': manifest.mediaType }, body: manifest.bytes, ca: r.ca, tlsName: r.tlsName });
  assert.is(res.status, 201, String(res.body));
}
const json = (mediaType: string, value: unknown): Blob => {
  const bytes = Buffer.from(JSON.stringify(value));
  return { digest: sha256(bytes), mediaType, bytes };
};
const descriptor = (b: Blob, extra: Record<string, unknown> = {}) => ({ mediaType: b.mediaType, digest: b.digest, size: b.bytes.length, ...extra });
/** An image for `arch`: makeImage's layer under a config that names the platform. */
const imageFor = (arch: string): OciImage => {
  const base = makeImage(`multi-arch ${arch}`);
  const cfg = JSON.parse(String(base.config.bytes));
  const config = json(base.config.mediaType, { ...cfg, architecture: arch });
  const manifest = json(MANIFEST, { schemaVersion: 2, mediaType: MANIFEST, config: descriptor(config), layers: base.layers.map((l) => descriptor(l)) });
  return { manifest, config, layers: base.layers };
};
/** An SBOM-like artifact whose subject is `subject`, and the digest-tag index that lists it (the OCI 1.1 fallback). */
async function pushReferrer(repo: string, subject: Blob, text: string): Promise<Blob> {
  const empty = json('application/vnd.oci.empty.v1+json', {});
  const layer: Blob = { digest: sha256(Buffer.from(text)), mediaType: 'text/spdx', bytes: Buffer.from(text) };
  const artifact = json(MANIFEST, { schemaVersion: 2, mediaType: MANIFEST, artifactType: 'application/spdx+json', config: descriptor(empty), layers: [descriptor(layer)], subject: descriptor(subject) });
  await putManifest(source, repo, artifact.digest, artifact, [empty, layer], sourceAuth);
  // The fallback index lists every referrer of the subject so far.
  const tag = `sha256-${subject.digest.slice(7)}`;
  const before = await getManifest(source, repo, tag, sourceAuth, INDEX);
  const listed = before.status === 200 ? (JSON.parse(String(before.body)).manifests as unknown[]) : [];
  const index = json(INDEX, { schemaVersion: 2, mediaType: INDEX, manifests: [...listed, descriptor(artifact, { artifactType: 'application/spdx+json' })] });
  await putManifest(source, repo, tag, index, [], sourceAuth);
  return artifact;
}

test.before(async () => {
  net = new PodNetwork('src', SUBNET);
  sourcePort = await freePort();
  // The source: its own CA (not the Cluster's), a server certificate for its address, htpasswd.
  const probe = await clusterMirror('10.96.0.0/12');
  const cert = await issueServerCertificate(probe.issuer, { commonName: 'source.test', dnsNames: ['source.test'], ipAddresses: [SOURCE_HOST], now: new Date() });
  const dir = workDir('registry', 'source-files');
  writeFileSync(join(dir, 'tls.crt'), cert['tls.crt']);
  writeFileSync(join(dir, 'tls.key'), cert['tls.key']);
  writeFileSync(join(dir, 'htpasswd'), htpasswdFor({ node: sourceUser, push: { username: 'unused', password: newPassword() }, previous: [] }, undefined));
  sourceTls = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), ca: probe.root.certPem };
  sourceAuth = basicAuthorization(sourceUser);
  await startSource();

  m = await clusterMirror('10.96.0.0/12', { replicas: 2, sources: [sourceEntry()] });
  push = basicAuthorization(m.creds.push);
  pull = basicAuthorization(m.creds.node);
  for (let i = 0; i < 2; i++) {
    podNs.push(net.join(`p${i}`, 10 + i));
    pods.push(await startRenderedRegistry(`src-${i}`, components().registry.path, m.config, m.tls, `${podIp(i)}:${REGISTRY.containerPort}`, NAMES[i], htpasswdFor(m.creds, undefined), { netns: podNs[i]! }));
  }
  writerSidecar = new SyncSidecar(`${REGISTRY.name}-0`, { config: m.syncConfig!, ca: m.tls['ca.crt'], auth: m.creds.node, hosts, sources: sourceSecret() }, podNs[0]);
  standbySidecar = new SyncSidecar(`${REGISTRY.name}-1`, { config: m.syncConfig!, ca: m.tls['ca.crt'], auth: m.creds.node, hosts }, podNs[1]);

  // What the source offers.
  const children = [imageFor('amd64'), imageFor('arm64')];
  for (const c of children) await putManifest(source, 'library/multi', c.manifest.digest, c.manifest, [c.config, ...c.layers], sourceAuth);
  const index = json(INDEX, { schemaVersion: 2, mediaType: INDEX, manifests: children.map((c, k) => descriptor(c.manifest, { platform: { architecture: ['amd64', 'arm64'][k], os: 'linux' } })) });
  await putManifest(source, 'library/multi', '1.0', index, [], sourceAuth);
  multi = { digest: index.digest, children };
  single = makeImage('single-platform 1.1');
  await source.push('library/single', '1.1', single, sourceAuth);
  await source.push('library/single', '2.0', makeImage('not selected: tag 2.0'), sourceAuth);
  await source.push('other/thing', '1.0', makeImage('not selected: repository'), sourceAuth);
  await source.push('team/tool', 'latest', makeImage('team tool'), sourceAuth);
  referrer = await pushReferrer('library/single', single.manifest, 'sbom one');

  // A node on the newest containerd: the writer's Service reaches registry-0; upstream is unreachable.
  const ns = net.join('n0', 100);
  PodNetwork.route(ns, m.registry.layout.serviceIp, REGISTRY.servicePort, podIp(0), REGISTRY.containerPort);
  PodNetwork.route(ns, m.registry.layout.standbyIp, REGISTRY.servicePort, podIp(1), REGISTRY.containerPort);
  const containerd = components().containerdMatrix.at(-1)!;
  node = new TestNode(nodeDir('s', '0'), { containerd: containerd.path, config: spawnSync(containerd.path, ['config', 'default'], { encoding: 'utf8' }).stdout, netns: ns });
  node.writeAddonFiles(m.files);
  assert.is(node.runScript().statusFile.state, 'enabled');
  await node.start();
});
test.after(async () => {
  await node?.stop();
  for (const p of pods) await p.stop();
  await source?.stop();
  net?.remove();
});

async function startSource() {
  const dir = workDir('registry', 'source-files');
  source = await startRegistry('source', sourceTls, {
    host: SOURCE_HOST,
    port: sourcePort,
    config: (addr, data) => [
      'version: 0.1',
      'log: {level: info, accesslog: {disabled: false}}',
      `storage: {filesystem: {rootdirectory: ${data}}, delete: {enabled: true}}`,
      `auth: {htpasswd: {realm: source, path: ${join(dir, 'htpasswd')}}}`,
      `http: {addr: "${addr}", secret: test-secret, tls: {certificate: ${sourceTls.certFile}, key: ${sourceTls.keyFile}}}`,
    ].join('\n'),
  });
}

test('the writer copies exactly the selected set: the index whole, the image with its referrer; the rest stays behind', async () => {
  const pass = await writerPass();
  assert.is(pass.results.length, 1, pass.output);
  const r = pass.results[0]!;
  assert.is(r.source, 'corp');
  assert.is(r.error, '', pass.output);
  assert.is(r.selected, 3, 'multi:1.0, single:1.1, tool:latest');
  assert.ok(r.copied >= 3, `${r.copied} copies (the referrer's digest tag comes with its subject)`);
  const writer = pods[0]!;
  assert.equal(await tagsOn(writer, 'library/multi', pull), ['1.0']);
  assert.equal(await tagsOn(writer, 'library/single', pull), ['1.1', `sha256-${single.manifest.digest.slice(7)}`].sort());
  assert.equal(await tagsOn(writer, 'team/tool', pull), ['latest']);
  assert.equal(await tagsOn(writer, 'other/thing', pull), [], 'a repository no pattern selects');
  assert.is((await getManifest(writer, 'library/multi', '1.0', pull)).digest, multi.digest, 'the index, byte for byte');
  for (const c of multi.children) assert.is((await getManifest(writer, 'library/multi', c.manifest.digest, pull)).status, 200, 'every platform');
  assert.is((await getManifest(writer, 'library/single', referrer.digest, pull)).status, 200, 'the referrer manifest');
  const selectedBytes = multi.children.reduce((n, c) => n + c.manifest.bytes.length + c.config.bytes.length + c.layers[0]!.bytes.length, 0);
  assert.ok(r.bytes >= selectedBytes, `bytes counted ${r.bytes} ≥ the index's ${selectedBytes}`);
  const api = await httpRequest(`${writer.url}/v2/library/single/referrers/${single.manifest.digest}`, { headers: { authorization: pull }, ca: writer.ca, tlsName: writer.tlsName });
  console.log(`  first pass: ${r.copied} copies, ${r.bytes} bytes in ${pass.ms} ms (regbot start included); the referrers API on Distribution ${components().registry.version}: HTTP ${api.status} (the digest tag carries them)`);

  const again = await writerPass();
  assert.is(again.results[0]!.copied, 0, 'a second pass copies nothing');
  assert.is(again.results[0]!.error, '');
});

test('a standby follows the writer, referrer included; the node pulls the copies through the CRI with upstream unreachable', async () => {
  const r = standbySidecar.once(`${REGISTRY.name}-1.yml`);
  assert.ok(r.ok, r.output);
  const standby = pods[1]!;
  const fallback = `sha256-${single.manifest.digest.slice(7)}`;
  for (const reg of [pods[0]!, standby]) {
    const listed = await getManifest(reg, 'library/single', fallback, pull, INDEX);
    assert.is(listed.status, 200);
    assert.equal(JSON.parse(String(listed.body)).manifests.map((d: { digest: string }) => d.digest), [referrer.digest]);
    assert.is((await getManifest(reg, 'library/single', referrer.digest, pull)).status, 200);
  }
  for (const ref of ['docker.io/library/multi:1.0', 'docker.io/library/single:1.1', 'docker.io/team/tool:latest']) {
    const pulled = node.pull(ref, 60_000);
    assert.ok(pulled.ok, `${ref}: ${pulled.output}`);
  }
  assert.not.ok(node.pull('docker.io/library/single:2.0', 30_000).ok, 'a tag not selected is not there (and upstream is unreachable)');
});

test('a referrer that arrives after its subject is copied by the next pass', async () => {
  const second = await pushReferrer('library/single', single.manifest, 'sbom two');
  const pass = await writerPass();
  assert.is(pass.results[0]!.error, '', pass.output);
  const listed = await getManifest(pods[0]!, 'library/single', `sha256-${single.manifest.digest.slice(7)}`, pull, INDEX);
  assert.equal(JSON.parse(String(listed.body)).manifests.map((d: { digest: string }) => d.digest), [referrer.digest, second.digest]);
});

test('a pattern taken out removes nothing by default; with removeUnselected the copy goes, what was pushed over it stays', async () => {
  const narrowed = { tags: ['latest'] };
  const keep = await writerPass(writerConfig([sourceEntry(narrowed)]));
  assert.is(keep.results[0]!.removed, 0);
  assert.equal(await tagsOn(pods[0]!, 'library/multi', pull), ['1.0'], 'still there');
  // Pushed over by hand: single:1.1 now differs from the source's.
  await pods[0]!.push('library/single', '1.1', makeImage('pushed over the copy'), push);
  const remove = await writerPass(writerConfig([sourceEntry({ ...narrowed, removeUnselected: true })]));
  assert.is(remove.results[0]!.error, '', remove.output);
  assert.is(remove.results[0]!.removed, 1, 'multi:1.0 only');
  assert.equal(await tagsOn(pods[0]!, 'library/multi', pull), []);
  assert.ok((await tagsOn(pods[0]!, 'library/single', pull)).includes('1.1'), 'the hand-pushed tag stays');
  assert.equal(await tagsOn(pods[0]!, 'team/tool', pull), ['latest']);
  // Back to the full selection for what follows.
  await writerPass(writerConfig([sourceEntry()]));
});

test('throughput: one sync pass of a 128 MiB set next to regctl image copy of the same set, same run', async () => {
  const tags = ['1', '2', '3', '4'];
  const size = 32 * 1024 * 1024;
  for (const t of tags) await source.push('perf/set', t, makeBulkImage(size), sourceAuth);
  const pass = await writerPass(writerConfig([sourceEntry({ repositories: ['perf/set'], tags: ['*'] })]));
  const r = pass.results[0]!;
  assert.is(r.error, '', pass.output);
  assert.is(r.copied, tags.length);
  assert.ok(r.bytes >= tags.length * size);
  // regctl (the same library, its CLI) from the writer's network namespace (the registry at 127.0.0.1, as the sidecar reaches it), into a repository of its own.
  const home = workDir('regctl-home');
  const login = (user: string, pass: string, ca: string) => ({ tls: 'enabled', regcert: ca, user, pass });
  writeFileSync(join(home, 'config.json'), JSON.stringify({ hosts: { [`${SOURCE_HOST}:${sourcePort}`]: login(sourceUser.username, sourceUser.password, sourceTls.ca), [`127.0.0.1:${REGISTRY.containerPort}`]: login(m.creds.push.username, m.creds.push.password, m.tls['ca.crt']) } }));
  const started = Date.now();
  for (const t of tags) {
    const [cmd, args] = podNs[0]!.wrap(components().regctl.path, ['image', 'copy', `${SOURCE_HOST}:${sourcePort}/perf/set:${t}`, `127.0.0.1:${REGISTRY.containerPort}/perf/regctl:${t}`]);
    const run = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, env: { PATH: process.env.PATH ?? '', HOME: home, REGCTL_CONFIG: join(home, 'config.json') } });
    assert.is(run.status, 0, `${run.stdout}${run.stderr}`);
  }
  const regctlMs = Date.now() - started;
  assert.equal(await tagsOn(pods[0]!, 'perf/regctl', pull), tags);
  const mibs = (ms: number) => ((tags.length * size) / 1048576 / (ms / 1000)).toFixed(1);
  console.log(`  ${tags.length} × 32 MiB from the source: the sync pass ${pass.ms} ms (${mibs(pass.ms)} MiB/s, regbot start and selection included); regctl image copy of the same set ${regctlMs} ms (${mibs(regctlMs)} MiB/s, one process per tag); ratio ${(pass.ms / regctlMs).toFixed(2)}`);
});

test('a wrong password and a source gone mid-copy remove nothing; the result names the source and why', async () => {
  const before = { multi: await tagsOn(pods[0]!, 'library/multi', pull), tool: await tagsOn(pods[0]!, 'team/tool', pull) };
  const config = writerConfig([sourceEntry({ removeUnselected: true })]);
  writerSidecar.writeSources(sourceSecret('wrong-password'));
  const refused = await writerPass(config);
  writerSidecar.writeSources(sourceSecret());
  const r = refused.results[0]!;
  assert.is(r.source, 'corp');
  assert.match(r.error, new RegExp(`listing ${SOURCE_HOST.replace(/\./g, '\\.')}:${sourcePort} failed, nothing copied or removed`));
  assert.match(r.error, /401|unauthorized/i);
  assert.is(r.copied + r.removed, 0);
  assert.equal(await tagsOn(pods[0]!, 'library/multi', pull), before.multi);
  assert.ok(!refused.output.includes('wrong-password'), 'the password is in no log line');

  // Three 48 MiB images; the source stops once the writer has begun receiving the first.
  for (const t of ['1.5', '1.6', '1.7']) await source.push('library/bulk', t, makeBulkImage(48 * 1024 * 1024), sourceAuth);
  writerSidecar.newPod();
  const running = writerSidecar.onceAsync(`${REGISTRY.writerPod}.yml`);
  await waitFor('the writer receiving library/bulk', async () => (existsSync(join(pods[0]!.dataDir, 'docker/registry/v2/repositories/library/bulk')) ? true : undefined), 120_000);
  await source.stop();
  const cut = await running;
  await startSource();
  const result = sourceResults(cut.output)[0]!;
  assert.ok(result.failed >= 1, cut.output);
  assert.match(result.error, /library\/bulk:1\.[567]/);
  assert.is(result.removed, 0, 'removeUnselected does not act on a pass with failures');
  assert.equal(await tagsOn(pods[0]!, 'library/multi', pull), before.multi);
  assert.equal(await tagsOn(pods[0]!, 'team/tool', pull), before.tool);
  // Whatever bulk tag exists on the writer is whole: its manifest and every blob answer.
  for (const t of await tagsOn(pods[0]!, 'library/bulk', pull)) {
    const man = JSON.parse(String((await getManifest(pods[0]!, 'library/bulk', t, pull)).body));
    for (const d of [man.config, ...man.layers]) {
      const head = await httpRequest(`${pods[0]!.url}/v2/library/bulk/blobs/${d.digest}`, { method: 'HEAD', headers: { authorization: pull }, ca: pods[0]!.ca, tlsName: pods[0]!.tlsName });
      assert.is(head.status, 200, `bulk:${t} ${d.digest}`);
    }
  }
  // The source back: the next pass completes the set.
  const resumed = await writerPass(config);
  assert.is(resumed.results[0]!.error, '', resumed.output);
  assert.equal(await tagsOn(pods[0]!, 'library/bulk', pull), ['1.5', '1.6', '1.7']);
  console.log(`  cut mid-copy: ${result.copied} copied, ${result.failed} failed (${result.error.slice(0, 120)}…); resumed: ${resumed.results[0]!.copied} copied in ${resumed.ms} ms`);
});

test.run();
