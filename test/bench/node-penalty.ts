// The bootstrap penalty: a new node whose mirror's Service IP drops packets (kube-proxy is not running
// yet), pulling one image from its upstream through the CRI (crictl), on every containerd of the matrix.
// "dial timeout only" is the node as the rendered hosts.toml alone leaves it (dial_timeout, which 1.6 and
// 1.7 ignore); "with fast-fail" adds the script's REJECT rule. Same run, same image, fresh content store
// for each pull. Prints JSON rows; scripts/bench.mjs prints the table (npm run bench:node).
import { spawnSync } from 'node:child_process';
import { clusterRegistry } from '../../src/addon/layout.ts';
import { basicAuthorization, newPassword } from '../../src/addon/credentials.ts';
import { mintClusterIssuer } from '../../src/pki/cluster-issuer.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { enableMirrorScript, hostsToml } from '../../src/render/node-files.ts';
import { parseCluster } from '../../src/runtime-sdk/request.ts';
import { cleanup, workDir } from '../integration/env/base.ts';
import { components } from '../integration/env/components.ts';
import { NetNs, nodeDir, TestNode } from '../integration/env/node.ts';
import { makeImage } from '../integration/env/oci.ts';
import { makeCa, makeLeaf } from '../integration/env/pki.ts';
import { startRegistry } from '../integration/env/registry.ts';

/** Removes the script's fast-fail rules (whatever their end time) from the node's namespace. */
const dropFastFail = (ns: NetNs) => {
  const rules = spawnSync('ip', ['netns', 'exec', ns.name, 'iptables', '-S', 'OUTPUT'], { encoding: 'utf8' }).stdout.split('\n');
  for (const rule of rules.filter((r) => r.includes('capi-registry-addon-fast-fail'))) {
    spawnSync('ip', ['netns', 'exec', ns.name, 'iptables', '-D', 'OUTPUT', ...rule.replace(/^-A OUTPUT /, '').split(' ')]);
  }
};

const parsed = parseCluster({ metadata: { name: 'c1', namespace: 'default' }, spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] } }, topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } } });
if (!parsed.ok) throw new Error(parsed.message);
const registry = clusterRegistry(parsed.value)!;
const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'root');
const issuer = await parseRootCa(await mintClusterIssuer(root, { cluster: 'default/c1', now: new Date() }), 'issuer');
const files = { hostsToml: hostsToml(registry.layout, registry.config, basicAuthorization({ username: 'node', password: newPassword() })), ca: issuer.certPem, script: enableMirrorScript() };

const ns = NetNs.create('crm-bench', [
  ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'], ['link', 'set', 'v0', 'up'], ['addr', 'add', '192.0.2.1/24', 'dev', 'v0'],
  ['neigh', 'add', '192.0.2.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'v0', 'nud', 'permanent'], ['route', 'add', '10.96.0.0/12', 'via', '192.0.2.2', 'dev', 'v0'],
]);
const ca = makeCa('bench-upstream');
const leaf = makeLeaf(ca, 'upstream', { sans: ['DNS:registry-1.docker.io', 'DNS:docker.io', 'IP:127.0.0.1'] });
const data = workDir('bench-upstream-data');
const config = (addr: string) => `version: 0.1\nstorage: {filesystem: {rootdirectory: ${data}}}\nhttp: {addr: "${addr}", secret: s, tls: {certificate: ${leaf.certFile}, key: ${leaf.keyFile}}}\n`;
const seed = await startRegistry('bench-seed', { certFile: leaf.certFile, keyFile: leaf.keyFile, ca: ca.pem }, { config });
await seed.push('library/app', '1.0', makeImage('bench app'));
await seed.stop();
const upstream = await startRegistry('bench-upstream', undefined, { host: '127.0.0.1', port: 443, config, wrap: (cmd, args) => ns.wrap(cmd, args) });

const rows: { version: string; mode: string; ms: number; ok: boolean }[] = [];
try {
  for (const { version, path } of components().containerdMatrix) {
    for (const mode of ['dial timeout only', 'with fast-fail']) {
      const node = new TestNode(nodeDir('b', `${version}-${rows.length}`), { containerd: path, config: spawnSync(path, ['config', 'default'], { encoding: 'utf8' }).stdout, netns: ns, systemCa: ca.pem });
      node.writeAddonFiles(files);
      node.runScript();
      if (mode === 'dial timeout only') dropFastFail(ns);
      await node.start();
      const pulled = node.pull('docker.io/library/app:1.0', 600_000);
      rows.push({ version, mode, ms: pulled.ms, ok: pulled.ok });
      await node.stop();
    }
  }
} finally {
  await upstream.stop();
  ns.remove();
  cleanup();
}
console.log(JSON.stringify(rows));
