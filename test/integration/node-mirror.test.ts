// Every node uses the mirror: the node-side script and the rendered files on every containerd a CAPI
// user runs (Debian's 1.6, and 1.7, 2.0, 2.1, 2.2.1, 2.2.x, 2.3, 2.4 built from the Go module proxy), each
// with the config shapes nodes really have, proven the way the kubelet pulls: through the CRI (crictl),
// with the registry's access log as evidence and upstream names that lead nowhere.
import { chmodSync, chownSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { basicAuthorization, htpasswdFor } from '../../src/addon/credentials.ts';
import { mintClusterIssuer } from '../../src/pki/cluster-issuer.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { issueServerCertificate } from '../../src/pki/server-cert.ts';
import { NODE_MIRROR_ANNOTATION, NODE_MIRROR_REASON_ANNOTATION, podHost, REGISTRY, serverCertSans } from '../../src/render/metadata.ts';
import { clusterStatus } from '../../src/observe/status.ts';
import { waitFor, workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { makeCa, makeLeaf } from './env/pki.ts';
import { NetNs, nodeDir, TestNode } from './env/node.ts';
import { makeImage } from './env/oci.ts';
import { PodNetwork } from './env/pod-network.ts';
import { startKube } from './env/kube.ts';
import { clusterMirror } from './env/mirror.ts';
import { startRegistry, startRenderedRegistry, type Registry } from './env/registry.ts';

const test = realSuite('every node uses the mirror: containerd 1.6 to 2.4 through the CRI');

let mirror: Registry;
let files: { hostsToml: string; ca: string; script: string };
const IMAGES = { docker: 'docker.io/library/app:1.0', quay: 'quay.io/team/tool:2.0' };

test.before(async () => {
  // A service CIDR of 127.0.0.0/24 puts the Service IP at 127.0.0.15 (the static band's end), where the mirror listens. Upstream
  // names resolve to 127.0.0.1, where port 443 is closed.
  const m = await clusterMirror('127.0.0.0/24');
  files = m.files;
  mirror = await startRenderedRegistry('node-mirror', components().registry.path, m.config, m.tls, `${m.registry.layout.serviceIp}:443`, undefined, htpasswdFor(m.creds, undefined));
  const push = basicAuthorization(m.creds.push);
  // containerd sends ?ns=<registry> and Distribution ignores it: docker.io/x and quay.io/x share a repository.
  await mirror.push('library/app', '1.0', makeImage('app from the mirror'), push);
  await mirror.push('team/tool', '2.0', makeImage('tool from the mirror'), push);
});
test.after(async () => {
  await mirror?.stop();
});

type Family = 'v2' | 'v3';
const familyOf = (version: string): Family => (/^v?1\./.test(version) ? 'v2' : 'v3');
const SECTION: Record<Family, string> = { v2: 'plugins."io.containerd.grpc.v1.cri".registry', v3: "plugins.'io.containerd.cri.v1.images'.registry" };
const PARENT: Record<Family, string> = { v2: 'plugins."io.containerd.grpc.v1.cri"', v3: "plugins.'io.containerd.cri.v1.images'" };
const HEAD: Record<Family, string> = { v2: 'version = 2', v3: 'version = 3' };

interface Variant {
  name: string;
  config: (family: Family, stock: string) => string | undefined;
  files?: Record<string, string>;
  /** The script must leave the node alone (and say so); containerd must still start with its CRI. */
  leftAlone?: RegExp;
  check?: (node: TestNode, family: Family) => void;
}

const VARIANTS: Variant[] = [
  { name: 'config default', config: (_f, stock) => stock },
  { name: 'no config.toml (the script writes config default)', config: () => undefined },
  {
    name: 'image-builder node image',
    config: (f) => f === 'v2'
      ? '# Use config version 2 to enable new configuration fields.\nversion = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    sandbox_image = "registry.k8s.io/pause:3.10"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n    runtime_type = "io.containerd.runc.v2"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n    SystemdCgroup = true\n  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "/etc/containerd/certs.d"\n'
      : "version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.images'.pinned_images]\n    sandbox = 'registry.k8s.io/pause:3.10'\n  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n    runtime_type = 'io.containerd.runc.v2'\n  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n    SystemdCgroup = true\n  [plugins.'io.containerd.cri.v1.images'.registry]\n    config_path = '/etc/containerd/certs.d'\n",
  },
  {
    name: 'custom config_path list (another directory with a quay.io host first)',
    config: (f) => `${HEAD[f]}\n[${SECTION[f]}]\n  config_path = "/etc/containerd/other.d:/etc/containerd/certs.d"\n`,
    files: { 'other.d/quay.io/hosts.toml': 'server = "https://quay.io"\n\n[host."https://quay.io"]\n  capabilities = ["pull", "resolve"]\n' },
    check: (node) => assert.match(node.file('other.d/quay.io/hosts.toml')!, /# BEGIN capi-registry-addon[\s\S]*\[host\."https:\/\/quay\.io"\]/, 'the mirror first, their host kept'),
  },
  {
    name: 'custom single config_path directory',
    config: (f) => `${HEAD[f]}\n[${SECTION[f]}]\n  config_path = "/etc/containerd/registry.d"\n`,
    check: (node) => assert.ok(node.file('registry.d/_default/hosts.toml'), 'the mirror goes into the operator\'s own directory'),
  },
  {
    name: 'header with a comment',
    config: (f) => `${HEAD[f]}\n\n[${SECTION[f]}]   # where registries are configured\n  config_path = ""\n`,
  },
  {
    name: 'config_path as a dotted key of the plugin table',
    config: (f) => `${HEAD[f]}\n[${PARENT[f]}]\n  registry.config_path = ""\n`,
  },
  { name: 'no version line', config: () => 'oom_score = 0\n\n[grpc]\n  max_recv_message_size = 16777216\n' },
  {
    name: "another patch's _default/hosts.toml (a mirror of its own)",
    config: (_f, stock) => stock,
    files: { 'certs.d/_default/hosts.toml': 'server = "https://registry-1.docker.io"\n\n[host."https://127.0.0.1:1"]\n  capabilities = ["pull", "resolve"]\n' },
    check: (node) => {
      const merged = node.file('certs.d/_default/hosts.toml')!;
      assert.ok(merged.indexOf('capi-registry-addon') < merged.indexOf('[host."https://127.0.0.1:1"]') && merged.startsWith('server = '), merged);
    },
  },
  {
    name: 'a node image with certs.d/docker.io/hosts.toml',
    config: (_f, stock) => stock,
    files: { 'certs.d/docker.io/hosts.toml': 'server = "https://registry-1.docker.io"\n\n[host."https://registry-1.docker.io"]\n  capabilities = ["pull", "resolve"]\n' },
  },
  {
    name: 'legacy mirrors',
    config: (f) => `${HEAD[f]}\n[${SECTION[f]}.mirrors."docker.io"]\n  endpoint = ["https://127.0.0.1:1"]\n`,
    leftAlone: /legacy registry mirrors\/configs\/auths are set/,
  },
  {
    name: 'legacy mirrors as dotted keys',
    config: (f) => `${HEAD[f]}\n[${PARENT[f]}]\n  registry.mirrors."docker.io".endpoint = ["https://127.0.0.1:1"]\n`,
    leftAlone: /legacy registry mirrors\/configs\/auths are set/,
  },
  {
    name: 'legacy configs.tls',
    config: (f) => `${HEAD[f]}\n[${SECTION[f]}.configs."registry.example.com:5000".tls]\n  insecure_skip_verify = true\n`,
    leftAlone: /legacy registry mirrors\/configs\/auths are set/,
  },
];

/** Access-log lines of the mirror since `from` that served `path` to the node credential. */
const served = (from: number, path: string) => readFileSync(mirror.logFile, 'utf8').slice(from).split('\n').filter((l) => l.includes(path) && l.includes('"auth.user.name":"node"'));

for (const { version, path } of (() => { try { return components().containerdMatrix; } catch { return [{ version: 'missing', path: '' }]; } })()) {
  test(`containerd ${version}: every config shape either pulls docker.io and quay.io images from the mirror through the CRI, or is left alone with the CRI still up; the script is idempotent`, async () => {
    const family = familyOf(version);
    const stock = spawnSync(path, ['config', 'default'], { encoding: 'utf8' }).stdout;
    const problems: string[] = [];
    for (const [index, variant] of VARIANTS.entries()) {
      const node = new TestNode(nodeDir(version, String(index)), { containerd: path, config: variant.config(family, stock), files: variant.files });
      node.writeAddonFiles(files);
      const before = node.file('config.toml');
      const first = node.runScript();
      assert.is(first.status, 0, `${variant.name}: the script always exits 0\n${first.stderr}`);
      const after = node.file('config.toml');
      const hostsAfter = node.file('certs.d/_default/hosts.toml');
      const second = node.runScript();
      assert.is(node.file('config.toml'), after, `${version} ${variant.name}: a second run changes nothing`);
      assert.is(node.file('certs.d/_default/hosts.toml'), hostsAfter, `${version} ${variant.name}: hosts.toml unchanged by a second run`);
      if (variant.leftAlone) {
        assert.is(first.statusFile.state, 'not-enabled', `${variant.name}: ${JSON.stringify(first.statusFile)}`);
        assert.match(first.statusFile.reason!, variant.leftAlone);
        assert.match(first.stderr, /capi-registry-addon: mirror not-enabled/, 'said on stderr (the journal on a node)');
        assert.is(after, before, `${variant.name}: config.toml untouched`);
      } else {
        assert.is(first.statusFile.state, 'enabled', `${version} ${variant.name}: ${JSON.stringify(first.statusFile)}\n${first.stderr}`);
        assert.match(second.statusFile.reason!, /config\.toml changed: no(; connections to the mirror not yet served by kube-proxy are refused at once until \S+Z)?$/);
      }
      await node.start({ cri: !variant.leftAlone });
      try {
        if (variant.leftAlone) {
          // Untouched, the node is exactly as its own config makes it. containerd 2.2.0/2.2.1 refuse legacy
          // mirrors even with no config_path in the file (their built-in default sets one): the CRI is down
          // there with or without this addon.
          if (!node.crictl(['info'], 10_000).ok) assert.match(node.log, /`mirrors` cannot be set when `config_path` is provided/, `${version} ${variant.name}: the CRI is down for a reason other than the node's own legacy config`);
          continue;
        }
        // The CRI plugin is up (it answered `crictl info` before start() returned).
        variant.check?.(node, family);
        for (const ref of [IMAGES.docker, IMAGES.quay]) {
          const from = readFileSync(mirror.logFile, 'utf8').length;
          const pulled = node.pull(ref, 60_000);
          const repoPath = ref.startsWith('docker.io') ? '/v2/library/app/manifests/1.0' : '/v2/team/tool/manifests/2.0';
          if (!pulled.ok) {
            problems.push(`${version} ${variant.name} ${ref}: ${pulled.output.trim().slice(-300)}`);
            continue;
          }
          await waitFor(`${ref} served by the mirror`, async () => (served(from, repoPath).length ? true : undefined), 10_000).catch(() => problems.push(`${version} ${variant.name} ${ref}: pulled, but not from the mirror`));
        }
      } finally {
        await node.stop();
      }
    }
    assert.equal(problems, [], problems.join('\n'));
  });
}

test('the script under a `set -e` runner: a read-only certs.d, then a full disk; it exits 0, the next command runs, no temporary file is left, config.toml keeps its mode and owner', async () => {
  const newest = components().containerdMatrix.at(-1)!;
  const stock = spawnSync(newest.path, ['config', 'default'], { encoding: 'utf8' }).stdout;
  // What the node looks like after the script: every file under /etc/containerd with its mode and owner.
  const listing = "find /etc/containerd -printf 'file %m %u:%g %p\\n'";
  const leftovers = (out: string) => out.split('\n').filter((l) => /capi-registry-addon\.(new|edited|decision)|\.block\.|\.addrs\.|\.tmp\.|\.capi-registry-addon\.\d+$/.test(l));

  // 1. certs.d read-only (an immutable image directory): the hosts files cannot be written.
  const ro = new TestNode(nodeDir('ro', newest.version), { containerd: newest.path, config: stock, files: { 'certs.d/quay.io/hosts.toml': 'server = "https://quay.io"\n' } });
  ro.writeAddonFiles(files);
  chmodSync(join(ro.etc, 'config.toml'), 0o640);
  chownSync(join(ro.etc, 'config.toml'), 0, 4);
  const configBefore = readFileSync(join(ro.etc, 'config.toml'), 'utf8');
  const r1 = ro.runScript({ setup: 'mount --bind /etc/containerd/certs.d /etc/containerd/certs.d && mount -o remount,ro,bind /etc/containerd/certs.d', after: listing });
  assert.is(r1.status, 0, r1.stderr);
  assert.match(r1.stdout, /runner: the next command runs/, 'kubeadm would run');
  assert.is(r1.statusFile.state, 'not-enabled', JSON.stringify(r1.statusFile));
  assert.match(r1.statusFile.reason!, /^failed while writing the mirror's hosts\.toml files \(exit \d+\): containerd keeps the configuration it had/);
  assert.is(readFileSync(join(ro.etc, 'config.toml'), 'utf8'), configBefore, 'config.toml untouched: the hosts files come first');
  assert.equal(leftovers(r1.stdout), [], 'no temporary file left');
  assert.match(r1.stdout, /file 640 root:adm \/etc\/containerd\/config\.toml/);

  // 2. The same node, writable: config.toml changes, and keeps its mode and owner.
  const r2 = ro.runScript({ after: listing });
  assert.is(r2.statusFile.state, 'enabled', JSON.stringify(r2.statusFile));
  assert.match(r2.stdout, /file 640 root:adm \/etc\/containerd\/config\.toml/, r2.stdout);
  assert.match(readFileSync(join(ro.etc, 'config.toml'), 'utf8'), /config_path = "\/etc\/containerd\/certs\.d"/);
  assert.match(r2.stdout, /file 600 root:root \/etc\/containerd\/certs\.d\/_default\/hosts\.toml/, 'hosts files (they carry the node credential) are 0600');
  assert.equal(leftovers(r2.stdout), []);

  // 3. A full disk: /etc/containerd on a 512 KiB tmpfs holding the node's files, the rest filled.
  const full = new TestNode(nodeDir('full', newest.version), { containerd: newest.path, config: stock });
  full.writeAddonFiles(files);
  const fill = [
    'mkdir -p /run/full && mount -t tmpfs -o size=512k tmpfs /run/full',
    'cp -a /etc/containerd/. /run/full/',
    'dd if=/dev/zero of=/run/full/filler bs=4k 2>/dev/null || true',
    'mount --bind /run/full /etc/containerd',
  ].join('\n');
  const r3 = full.runScript({ setup: fill, after: `${listing}\ncmp /etc/containerd/config.toml ${join(full.etc, 'config.toml')} && echo "config.toml: unchanged"` });
  assert.is(r3.status, 0, r3.stderr);
  assert.match(r3.stdout, /runner: the next command runs/);
  assert.match(r3.stderr, /capi-registry-addon: (failed while (editing a copy of|writing the mirror's hosts\.toml files)|mirror not-enabled: \/etc\/containerd\/config\.toml: the config could not be read or the edited copy not written \(a full disk\?\))/, r3.stderr);
  assert.match(r3.stdout, /config\.toml: unchanged/, r3.stdout);
  assert.equal(leftovers(r3.stdout), [], 'no temporary file left on the full disk');
});

test('a mirror whose Service IP drops packets (a new node before kube-proxy): the fast-fail rule refuses at once and pulls go upstream, on every containerd', async () => {
  // The node's own network namespace: the Service CIDR routed out of a veth whose peer is down (packets
  // leave and nothing ever answers, as before kube-proxy), the upstream registry on 127.0.0.1:443 under
  // the upstream names, trusted by the node's system CA.
  const ns = NetNs.create('crm-penalty', [
    ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'], ['link', 'set', 'v0', 'up'], ['addr', 'add', '192.0.2.1/24', 'dev', 'v0'],
    ['neigh', 'add', '192.0.2.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'v0', 'nud', 'permanent'], ['route', 'add', '10.96.0.0/12', 'via', '192.0.2.2', 'dev', 'v0'],
  ]);
  const ca = makeCa('upstream');
  const leaf = makeLeaf(ca, 'upstream', { sans: ['DNS:registry-1.docker.io', 'DNS:docker.io', 'DNS:quay.io', 'IP:127.0.0.1'] });
  const data = workDir('upstream-data');
  const config = (addr: string) => `version: 0.1\nlog: {level: info, accesslog: {disabled: false}}\nstorage: {filesystem: {rootdirectory: ${data}}}\nhttp: {addr: "${addr}", secret: s, tls: {certificate: ${leaf.certFile}, key: ${leaf.keyFile}}}\n`;
  // Seeded on this machine's loopback, then served inside the node's namespace from the same storage.
  const seed = await startRegistry('upstream-seed', { certFile: leaf.certFile, keyFile: leaf.keyFile, ca: ca.pem }, { config: (addr) => config(addr) });
  await seed.push('library/app', '1.0', makeImage('app from upstream'));
  await seed.stop();
  const upstream = await startRegistry('upstream', undefined, { host: '127.0.0.1', port: 443, config: (addr) => config(addr), wrap: (cmd, args) => ns.wrap(cmd, args) });
  const m = await clusterMirror('10.96.0.0/12');
  try {
    for (const { version, path } of components().containerdMatrix) {
      const node = new TestNode(nodeDir('p', version), { containerd: path, config: spawnSync(path, ['config', 'default'], { encoding: 'utf8' }).stdout, netns: ns, systemCa: ca.pem });
      node.writeAddonFiles(m.files);
      const r = node.runScript();
      assert.is(r.statusFile.state, 'enabled', JSON.stringify(r.statusFile));
      assert.match(r.statusFile.fast_fail!, /^iptables until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'the rule is in place, and ends');
      await node.start();
      try {
        const pulled = node.pull(IMAGES.docker, 120_000);
        assert.ok(pulled.ok, `${version}: ${pulled.output}`);
        // The mirror was tried and refused at once (not a dial that waited to time out), then upstream served it.
        assert.match(node.log, /10\.96\.0\.20:443.*connection refused/, `${version}: the writer was refused, not waited for`);
        assert.match(node.log, /10\.96\.0\.21:443.*connection refused/, `${version}: the standby too`);
        assert.not.match(node.log, /10\.96\.0\.2[01]:443.*(i\/o timeout|context deadline exceeded)/, `${version}: no dial waited out`);
      } finally {
        await node.stop();
      }
    }
    // The script's rule lives only in the node's namespace.
    const rules = spawnSync('ip', ['netns', 'exec', ns.name, 'iptables', '-S', 'OUTPUT'], { encoding: 'utf8' }).stdout;
    assert.match(rules, /-d 10\.96\.0\.20\/32 -p tcp -m tcp --dport 443 -m addrtype ! --dst-type LOCAL -m time --datestop \S+ -m comment --comment capi-registry-addon-fast-fail -j REJECT --reject-with tcp-reset/);
    assert.match(rules, /-d 10\.96\.0\.21\/32 -p tcp -m tcp --dport 443 .*capi-registry-addon-fast-fail/, 'the standby Service too');
    assert.is(rules.match(/capi-registry-addon-fast-fail/g)!.length, 2, 'once per mirror address, however often the script ran');
  } finally {
    await upstream.stop();
    ns.remove();
  }
});

test('Services translated after netfilter OUTPUT (OVN-Kubernetes, Antrea proxyAll): the fast-fail rule refuses the mirror only until its end, then the node pulls through it; the status says until when', async () => {
  // The node's packets to the Service IP leave it untranslated and a gateway translates them (DNAT in its
  // PREROUTING, as OVN's gateway router does outside the node's netfilter): the node's OUTPUT chain sees the
  // Service IP for good, so a rule without an end would refuse the mirror for good.
  const SUBNET = '10.214.0';
  const net = new PodNetwork('cro', SUBNET);
  const m = await clusterMirror('10.96.0.0/12');
  let registry: Registry | undefined;
  let node: TestNode | undefined;
  try {
    const podNs = net.join('reg', 10);
    const gw = net.join('gw', 254);
    const nodeNs = net.join('node', 100);
    const inNs = (ns: NetNs, args: string[]) => {
      const [cmd, argv] = ns.wrap(args[0]!, args.slice(1));
      const r = spawnSync(cmd, argv, { encoding: 'utf8' });
      assert.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    inNs(gw, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const ip of [m.registry.layout.serviceIp, m.registry.layout.standbyIp!]) {
      inNs(gw, ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-d', ip, '-p', 'tcp', '--dport', '443', '-j', 'DNAT', '--to-destination', `${SUBNET}.10:${REGISTRY.containerPort}`]);
    }
    inNs(gw, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-d', `${SUBNET}.10`, '-j', 'MASQUERADE']);
    inNs(nodeNs, ['ip', 'route', 'add', '10.96.0.0/12', 'via', `${SUBNET}.254`]);
    registry = await startRenderedRegistry('translated-later', components().registry.path, m.config, m.tls, `${SUBNET}.10:${REGISTRY.containerPort}`, podHost(`${REGISTRY.name}-0`, 'cluster.local'), htpasswdFor(m.creds, undefined), { netns: podNs });
    await registry.push('library/app', '1.0', makeImage('app behind a gateway'), basicAuthorization(m.creds.push));

    const newest = components().containerdMatrix.at(-1)!;
    node = new TestNode(nodeDir('translated-later', newest.version), { containerd: newest.path, config: spawnSync(newest.path, ['config', 'default'], { encoding: 'utf8' }).stdout, netns: nodeNs });
    node.writeAddonFiles(m.files);
    const WINDOW_S = 8;
    const ran = node.runScript({ args: `--fast-fail-seconds ${WINDOW_S}` });
    const until = Date.parse(ran.statusFile.fast_fail!.replace(/^iptables until /, ''));
    assert.ok(Number.isFinite(until), JSON.stringify(ran.statusFile));
    assert.is(ran.statusFile.state, 'enabled');
    assert.match(ran.statusFile.reason!, /connections to the mirror not yet served by kube-proxy are refused at once until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    await node.start();
    const early = node.pull(IMAGES.docker, 60_000);
    if (Date.now() < until) {
      assert.not.ok(early.ok, 'inside the window: the mirror refused, and upstream leads nowhere');
      assert.match(node.log, /10\.96\.0\.20:443.*connection refused/, 'refused at once by the rule');
    }
    await waitFor('the fast-fail window to end', async () => (Date.now() > until + 1500 ? true : undefined), (WINDOW_S + 5) * 1000);
    const from = readFileSync(registry.logFile, 'utf8').length;
    const late = node.pull(IMAGES.docker, 60_000);
    assert.ok(late.ok, `after the window: pulled through the gateway-translated Service: ${late.output}`);
    assert.ok(readFileSync(registry.logFile, 'utf8').slice(from).includes('/v2/library/app/manifests/1.0'), 'served by the mirror');
    // The rule is still listed, but inert: a later run in the same boot keeps it as it is.
    const again = node.runScript({ args: `--fast-fail-seconds ${WINDOW_S}` });
    assert.is(again.statusFile.fast_fail, ran.statusFile.fast_fail, 'no new window on a second run');
  } finally {
    await node?.stop();
    await registry?.stop();
    net.remove();
  }
});

test('after joining, each node reports its mirror on its own Node with the kubelet\'s credential (Node authorizer, NodeRestriction); another node\'s credential cannot; status counts them', async () => {
  const api = await startKube('nodes', { serviceCidr: '10.96.0.0/12', nodeAuthorization: true });
  try {
    const newest = components().containerdMatrix.at(-1)!;
    const stock = spawnSync(newest.path, ['config', 'default'], { encoding: 'utf8' }).stdout;
    // One node the script enables, one whose legacy mirrors it leaves alone, one that never reports (built
    // before the report existed, or without kubectl).
    const cases = [['cp-1', stock], ['md-1', `version = 3\n[plugins.'io.containerd.cri.v1.images'.registry.mirrors."docker.io"]\n  endpoint = ["https://127.0.0.1:1"]\n`], ['md-2', stock]] as const;
    const conf = (name: string) => {
      // kubeadm's kubelet.conf after the TLS bootstrap: the client certificate of system:node:<name>.
      const leaf = makeLeaf(api.ca, `kubelet-${name}`, { client: true, subject: `/O=system:nodes/CN=system:node:${name}` });
      const dir = workDir('kubelet-conf', name);
      const b64 = (t: string) => Buffer.from(t).toString('base64');
      writeFileSync(join(dir, 'kubelet.conf'), JSON.stringify({
        apiVersion: 'v1', kind: 'Config', 'current-context': 'k',
        clusters: [{ name: 'k', cluster: { server: api.url, 'certificate-authority-data': b64(api.ca.pem) } }],
        users: [{ name: 'kubelet', user: { 'client-certificate-data': b64(leaf.cert), 'client-key-data': b64(leaf.key) } }],
        contexts: [{ name: 'k', context: { cluster: 'k', user: 'kubelet' } }],
      }));
      return dir;
    };
    for (const [name, config] of cases) {
      // The kubelet registered its Node when it joined.
      assert.is((await api.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } })).status, 201);
      const node = new TestNode(nodeDir('report', name), { containerd: newest.path, config, ...(name === 'md-2' ? {} : { kubernetes: { dir: conf(name), kubectl: components().kubectl.path } }) });
      node.writeAddonFiles(files);
      node.runScript();
      if (name === 'md-2') continue;
      const r = node.runReport();
      assert.is(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`report: Node ${name} annotated mirror=`));
    }
    const nodes = (await api.request('GET', '/api/v1/nodes')).body.items;
    const mirror = (n: string) => nodes.find((x: any) => x.metadata.name === n).metadata.annotations ?? {};
    assert.is(mirror('cp-1')[NODE_MIRROR_ANNOTATION], 'enabled');
    assert.match(mirror('cp-1')[NODE_MIRROR_REASON_ANNOTATION], /^containerd \S+ reads \S+ \(/);
    assert.is(mirror('md-1')[NODE_MIRROR_ANNOTATION], 'not-enabled');
    assert.match(mirror('md-1')[NODE_MIRROR_REASON_ANNOTATION], /legacy registry mirrors\/configs\/auths are set/);
    assert.is(mirror('md-2')[NODE_MIRROR_ANNOTATION], undefined);
    // A node cannot write another node's mirror state: the API server refuses md-1's kubelet on cp-1.
    const forged = spawnSync(components().kubectl.path, ['--kubeconfig', join(conf('md-1'), 'kubelet.conf'), 'annotate', '--overwrite', 'node', 'cp-1', `${NODE_MIRROR_ANNOTATION}=not-enabled`], { encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: workDir('kubectl-home') } });
    assert.is.not(forged.status, 0);
    assert.match(forged.stderr, /forbidden/i);
    assert.is(mirror('cp-1')[NODE_MIRROR_ANNOTATION], 'enabled');
    // What `status` makes of these Nodes.
    const counted = clusterStatus({ namespace: 'default', name: 'c1', annotations: {}, releases: [], authEnabled: false, credentials: {}, statefulSet: undefined, nodes, now: new Date() }).mirror;
    assert.equal(counted, { enabled: 1, nodes: 3, notEnabled: ['md-1'], unreported: ['md-2'] });
  } finally {
    await api.stop();
  }
});

test('cross-cluster: containerd trusting cluster B\'s CA Secret refuses cluster A\'s registry; trusting A\'s, it pulls', async () => {
  const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'root');
  const issuerOf = async (name: string) => parseRootCa(await mintClusterIssuer(root, { cluster: `default/${name}`, now: new Date() }), name);
  const [a, b] = [await issuerOf('a'), await issuerOf('b')];
  const m = await clusterMirror('127.0.0.0/24');
  // Cluster A's registry at the same Service IP a B node would use.
  const tlsA = { ...(await issueServerCertificate(a, { ...serverCertSans(m.registry.layout), now: new Date() })), 'ca.crt': root.certPem };
  await mirror.stop();
  const registryA = await startRenderedRegistry('cross-a', components().registry.path, m.config, tlsA, `${m.registry.layout.serviceIp}:443`, undefined, htpasswdFor(m.creds, undefined));
  try {
    await registryA.push('library/app', '1.0', makeImage('A'), basicAuthorization(m.creds.push));
    const newest = components().containerdMatrix.at(-1)!;
    for (const [trust, expectOk] of [[b.certPem, false], [a.certPem, true]] as const) {
      const node = new TestNode(nodeDir('x', expectOk ? 'a' : 'b'), { containerd: newest.path, config: spawnSync(newest.path, ['config', 'default'], { encoding: 'utf8' }).stdout });
      node.writeAddonFiles({ ...m.files, ca: trust });
      assert.is(node.runScript().statusFile.state, 'enabled');
      await node.start();
      try {
        const pulled = node.pull(IMAGES.docker, 60_000);
        assert.is(pulled.ok, expectOk, pulled.output);
        if (!expectOk) assert.match(node.log, /x509: certificate signed by unknown authority|tls: failed to verify certificate/);
      } finally {
        await node.stop();
      }
    }
  } finally {
    await registryA.stop();
  }
});

test.run();
