// Certificates from `cert mint-ca` / `cert issue` (the bundle, on every runtime) checked by the real
// consumers: openssl verify and x509 -text, zlint, and containerd's Go TLS client against Distribution.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { openssl, workDir } from './env/base.ts';
import { components } from './env/components.ts';
import { nodeDir, TestNode } from './env/node.ts';
import { BUNDLE, RUNTIMES } from './env/extension.ts';
import { makeImage } from './env/oci.ts';
import { startRegistry } from './env/registry.ts';

const test = realSuite('registry PKI');
const dir = workDir('pki-suite');
const b64 = (s: string) => Buffer.from(s).toString('base64');

function cli(runtime: string, args: string[]) {
  const cmd = RUNTIMES[runtime]!;
  return spawnSync(cmd[0]!, [...cmd.slice(1), BUNDLE, ...args], { encoding: 'utf8' });
}
/** Data of a YAML Secret the CLI printed (base64 lines under `data:`). */
const secretData = (yaml: string): Record<string, string> =>
  Object.fromEntries([...yaml.matchAll(/^ {2}(tls\.crt|tls\.key|ca\.crt): (\S+)$/gm)].map((m) => [m[1]!, Buffer.from(m[2]!, 'base64').toString('utf8')]));
const writeSecret = (file: string, data: Record<string, string>) =>
  writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) }));

const clusterFile = join(dir, 'cluster.json');
writeFileSync(clusterFile, JSON.stringify({
  apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name: 'c1', namespace: 'default' },
  spec: { clusterNetwork: { services: { cidrBlocks: ['10.96.0.0/12'] }, serviceDomain: 'cluster.local' },
    topology: { classRef: { name: 'quick-start' }, version: 'v1.33.1', variables: [{ name: 'clusterConfig', value: { addons: { registry: { replicas: 2 } } } }] } },
}));
const EXPECTED_DNS = ['registry', 'registry.capi-registry', 'registry.capi-registry.svc', 'registry.capi-registry.svc.cluster.local',
  'registry-standby', 'registry-standby.capi-registry', 'registry-standby.capi-registry.svc', 'registry-standby.capi-registry.svc.cluster.local',
  'registry-headless', 'registry-headless.capi-registry', 'registry-headless.capi-registry.svc', 'registry-headless.capi-registry.svc.cluster.local',
  'registry-0.registry-headless.capi-registry.svc', 'registry-0.registry-headless.capi-registry.svc.cluster.local',
  'registry-1.registry-headless.capi-registry.svc', 'registry-1.registry-headless.capi-registry.svc.cluster.local', 'localhost'];

/** Root CAs as operators bring them: openssl in every key encoding cert-manager writes, and ours. */
function rootCas(): Record<string, string> {
  const out: Record<string, string> = {};
  const make = (name: string, keyCmd: string[]) => {
    const d = workDir('pki-suite', name);
    openssl(keyCmd, d);
    openssl(['req', '-x509', '-key', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', `/O=test/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d);
    const crt = readFileSync(join(d, 'ca.crt'), 'utf8');
    const file = join(d, 'secret.json');
    writeSecret(file, { 'tls.crt': crt, 'tls.key': readFileSync(join(d, 'ca.key'), 'utf8'), 'ca.crt': crt });
    out[name] = file;
  };
  make('openssl-rsa2048-pkcs1', ['genrsa', '-traditional', '-out', 'ca.key', '2048']);
  make('openssl-p256-sec1', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  make('openssl-p384-pkcs8', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', 'ca.key']);
  const minted = cli('node', ['cert', 'mint-ca']);
  assert.is(minted.status, 0, minted.stderr);
  out['minted-p256'] = join(dir, 'minted.json');
  writeSecret(out['minted-p256'], secretData(minted.stdout));
  return out;
}
const CAS = rootCas();

test('every issued chain verifies with openssl and shows the exact SANs, EKU, KU and dates (CA x leaf x runtime)', () => {
  for (const [caName, caFile] of Object.entries(CAS)) {
    const caPem = secretData(`data:\n${Object.entries(JSON.parse(readFileSync(caFile, 'utf8')).data).map(([k, v]) => `  ${k}: ${v}`).join('\n')}`)['tls.crt']!;
    for (const leafAlg of ['ecdsa-p256', 'rsa-2048']) {
      for (const runtime of Object.keys(RUNTIMES)) {
        const where = `${caName} / ${leafAlg} / ${runtime}`;
        const before = Date.now();
        const r = cli(runtime, ['cert', 'issue', '--ca-secret', caFile, '--cluster', clusterFile, '--key-algorithm', leafAlg]);
        assert.is(r.status, 0, `${where}: ${r.stderr}`);
        const data = secretData(r.stdout);
        assert.is(data['ca.crt'], caPem, where);
        const d = workDir('pki-suite', 'out', caName, leafAlg, runtime);
        writeFileSync(join(d, 'ca.crt'), data['ca.crt']!);
        writeFileSync(join(d, 'tls.crt'), data['tls.crt']!);
        assert.match(openssl(['verify', '-CAfile', join(d, 'ca.crt'), join(d, 'tls.crt')]), /tls\.crt: OK/, where);
        const text = openssl(['x509', '-in', join(d, 'tls.crt'), '-noout', '-text', '-dateopt', 'iso_8601']);
        const san = /X509v3 Subject Alternative Name: \n\s+(.*)\n/.exec(text)![1]!;
        assert.is(san, [...EXPECTED_DNS.map((n) => `DNS:${n}`), 'IP Address:10.96.0.20', 'IP Address:10.96.0.21', 'IP Address:127.0.0.1'].join(', '), where);
        assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
        assert.match(text, leafAlg === 'rsa-2048' ? /Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/ : /Key Usage: critical\n\s+Digital Signature\n/, where);
        assert.match(text, /Basic Constraints: critical\n\s+CA:FALSE/);
        assert.match(text, /Subject: O ?= ?capi-registry-addon, CN ?= ?registry\n/);
        assert.match(text, /X509v3 Authority Key Identifier/);
        const notBefore = Date.parse(/Not Before: (.*)/.exec(text)![1]!.replace(' ', 'T'));
        const notAfter = Date.parse(/Not After : (.*)/.exec(text)![1]!.replace(' ', 'T'));
        assert.ok(Math.abs(notBefore - (before - 5 * 60_000)) < 10_000, `${where}: notBefore 5 minutes back`);
        assert.is(Math.round((notAfter - notBefore) / 60_000), 730 * 24 * 60 + 5, `${where}: 2 years from issuance`);
      }
    }
  }
});

test('zlint (RFC 5280/5480/5891/3279/8813 and community lints) finds no error or warning on the minted root and its leaves', () => {
  const lint = (pem: string, name: string) => {
    const file = join(dir, `${name}.pem`);
    writeFileSync(file, pem);
    const r = spawnSync(components().zlint.path, ['-includeSources', 'RFC5280,RFC5480,RFC5891,RFC3279,RFC8813,Community', file], { encoding: 'utf8' });
    const results = JSON.parse(r.stdout) as Record<string, { result: string; details?: string }>;
    const bad = Object.entries(results).filter(([, v]) => ['warn', 'error', 'fatal'].includes(v.result)).map(([k, v]) => `${k}: ${v.result} ${v.details ?? ''}`);
    assert.ok(Object.keys(results).length > 100, `${name}: zlint ran its lints`);
    assert.equal(bad, [], name);
  };
  for (const alg of ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048']) {
    const minted = secretData(cli('node', ['cert', 'mint-ca', '--key-algorithm', alg]).stdout);
    lint(minted['tls.crt']!, `root-${alg}`);
    const caFile = join(dir, `mint-${alg}.json`);
    writeSecret(caFile, minted);
    for (const leafAlg of ['ecdsa-p256', 'rsa-2048']) {
      lint(secretData(cli('node', ['cert', 'issue', '--ca-secret', caFile, '--cluster', clusterFile, '--key-algorithm', leafAlg]).stdout)['tls.crt']!, `leaf-${leafAlg}-under-${alg}`);
    }
  }
});

test("containerd (1.6 and the newest build, through the CRI) pulls from Distribution serving the issued certificate, trusting only ca.crt, and rejects another CA's", async () => {
  const serve = async (name: string, caFile: string) => {
    const data = secretData(cli('node', ['cert', 'issue', '--ca-secret', caFile, '--cluster', clusterFile]).stdout);
    const d = workDir('pki-suite', 'serve', name);
    for (const [k, v] of Object.entries(data)) writeFileSync(join(d, k), v);
    return { registry: await startRegistry(`pki-${name}`, { certFile: join(d, 'tls.crt'), keyFile: join(d, 'tls.key'), ca: data['ca.crt']! }), caFile: join(d, 'ca.crt') };
  };
  const trusted = await serve('trusted', CAS['minted-p256']!);
  const foreign = await serve('foreign', CAS['openssl-p256-sec1']!);
  const image = makeImage('pki handshake');
  await trusted.registry.push('pki/hello', 'v1', image);
  await foreign.registry.push('pki/hello', 'v1', image);
  // hosts.toml for each registry trusting ONLY the minted root's ca.crt.
  const files: Record<string, string> = {};
  for (const r of [trusted.registry, foreign.registry]) {
    files[`certs.d/${r.host}/hosts.toml`] = `server = "https://${r.host}"\n[host."https://${r.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "${trusted.caFile}"\n`;
  }
  const matrix = components().containerdMatrix;
  for (const { version, path } of [matrix[0]!, matrix.at(-1)!]) {
    const config = /^v?1\./.test(version)
      ? 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
      : "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n";
    const node = new TestNode(nodeDir('pki', version), { containerd: path, config, files });
    await node.start();
    try {
      const ok = node.pull(`${trusted.registry.host}/pki/hello:v1`, 60_000);
      assert.ok(ok.ok, `${version}: ${ok.output}`);
      const rejected = node.pull(`${foreign.registry.host}/pki/hello:v1`, 60_000);
      assert.not.ok(rejected.ok, version);
      assert.match(`${rejected.output}${node.log}`, /x509: certificate signed by unknown authority|tls: failed to verify certificate/, version);
    } finally {
      await node.stop();
    }
  }
  await trusted.registry.stop();
  await foreign.registry.stop();
});

test('malformed CA Secrets: exit 1, an actionable message, no key material', () => {
  const d = workDir('pki-suite', 'bad');
  const good = JSON.parse(readFileSync(CAS['openssl-p256-sec1']!, 'utf8')).data as Record<string, string>;
  const text = (k: string) => Buffer.from(good[k]!, 'base64').toString('utf8');
  const curveKey = (curve: string) => {
    openssl(['ecparam', '-name', curve, '-genkey', '-noout', '-out', `${curve}.key`], d);
    openssl(['req', '-x509', '-key', `${curve}.key`, '-out', `${curve}.crt`, '-days', '30', '-subj', `/CN=${curve}`, '-addext', 'basicConstraints=critical,CA:TRUE'], d);
    return { 'tls.crt': readFileSync(join(d, `${curve}.crt`), 'utf8'), 'tls.key': readFileSync(join(d, `${curve}.key`), 'utf8') };
  };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.crt', '-days', '30', '-subj', '/CN=leaf', '-addext', 'basicConstraints=critical,CA:FALSE'], d);
  const other = JSON.parse(readFileSync(CAS['openssl-p384-pkcs8']!, 'utf8')).data as Record<string, string>;
  const cases: [string, Record<string, string>, RegExp][] = [
    ['truncated PEM', { 'tls.crt': text('tls.crt').slice(0, 300), 'tls.key': text('tls.key') }, /holds no PEM CERTIFICATE \(empty, truncated or not PEM\)/],
    ['wrong PEM type', { 'tls.crt': text('tls.key'), 'tls.key': text('tls.key') }, /holds a PEM EC PRIVATE KEY, not a CERTIFICATE/],
    ['key of another CA', { 'tls.crt': text('tls.crt'), 'tls.key': Buffer.from(other['tls.key']!, 'base64').toString('utf8') }, /does not belong to its tls\.crt/],
    ['not a CA', { 'tls.crt': readFileSync(join(d, 'leaf.crt'), 'utf8'), 'tls.key': readFileSync(join(d, 'leaf.key'), 'utf8') }, /is not a CA certificate/],
    ['secp256k1', curveKey('secp256k1'), /unsupported curve \(1\.3\.132\.0\.10\): use P-256 or P-384/],
    ['P-521', curveKey('secp521r1'), /unsupported curve \(1\.3\.132\.0\.35\): use P-256 or P-384/],
  ];
  for (const [name, data, message] of cases) {
    const file = join(d, `${name.replace(/\W+/g, '-')}.json`);
    writeSecret(file, data);
    for (const runtime of Object.keys(RUNTIMES)) {
      const r = cli(runtime, ['cert', 'issue', '--ca-secret', file, '--cluster', clusterFile]);
      assert.is(r.status, 1, `${name} on ${runtime}`);
      assert.match(r.stderr, message, `${name} on ${runtime}`);
      assert.not.match(r.stderr, /BEGIN|MII|MHc|at .*\.mjs/, `${name} on ${runtime}: no key material, no stack trace`);
    }
  }
});

test.run();
