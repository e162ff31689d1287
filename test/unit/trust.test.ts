// Trust boundaries, the pure parts: the workload kubeconfig check, the bcrypt cost guard, per-cluster
// issuers, the request-body budget and bounded metrics. The attacks themselves run against the real
// API servers in test/integration/attacks.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { htpasswdFor, newPassword, BCRYPT_COST } from '../../src/addon/credentials.ts';
import { endpointMismatch, KubeconfigRefused, readWorkloadKubeconfig } from '../../src/kube/workload-kubeconfig.ts';
import { Counter } from '../../src/observe/metrics.ts';
import { mintClusterIssuer, pathLength, rootAllowsIssuers, signedBy } from '../../src/pki/cluster-issuer.ts';
import { buildCertificate, generateKeyPair, KeyUsageBit, certificatePem, privateKeyPem } from '../../src/pki/certificate.ts';
import { certificateFacts, decodeCertificate } from '../../src/pki/inspect.ts';
import { parsePem } from '../../src/pki/pem.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { issueServerCertificate } from '../../src/pki/server-cert.ts';
import { bcryptHash } from '../../src/wasm/bcrypt.ts';
import { anchorsToKeep, bundleAnchors, MAX_PREVIOUS_ANCHORS, trustBundle } from '../../src/pki/trust-bundle.ts';
import { clampedSince, currentRollover, machinesBefore, type RolloverDeps } from '../../src/addon/trust-rollover.ts';

const test = suite('trust boundaries (pure)');
const NOW = new Date('2026-12-01T00:00:00Z');

const kubeconfig = (cluster: Record<string, unknown>, user: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({
  apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
  clusters: [{ name: 'w', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': 'Q0E=', ...cluster } }],
  users: [{ name: 'u', user }], contexts: [{ name: 'c', context: { cluster: 'w', user: 'u' } }], ...extra,
});
const certUser = { 'client-certificate-data': 'Q0VSVA==', 'client-key-data': 'S0VZ' };

test('kubeconfig: CAPI\'s shapes (certificate data, token, YAML) are read as data', () => {
  assert.equal(readWorkloadKubeconfig(kubeconfig({}, certUser)), { server: 'https://10.0.0.1:6443', caData: 'Q0E=', certData: 'Q0VSVA==', keyData: 'S0VZ' });
  assert.is(readWorkloadKubeconfig(kubeconfig({}, { token: 't0k' })).token, 't0k');
  const yaml = 'apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: w\n  cluster:\n    server: https://cp.example:6443\n    certificate-authority-data: Q0E=\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context: {cluster: w, user: u}\n';
  assert.is(readWorkloadKubeconfig(yaml).server, 'https://cp.example:6443');
});

test('kubeconfig: exec, auth-provider, file paths, proxies, insecure, http and YAML tags are refused by name', () => {
  const refused = (text: string, field: RegExp) => assert.throws(() => readWorkloadKubeconfig(text), (e: Error) => e instanceof KubeconfigRefused && field.test(e.message));
  refused(kubeconfig({}, { exec: { command: 'node', args: ['-e', 'x'] } }), /user\.exec is not accepted/);
  refused(kubeconfig({}, { 'auth-provider': { name: 'oidc' } }), /user\.auth-provider is not accepted/);
  refused(kubeconfig({}, { 'client-certificate': '/etc/passwd', 'client-key': '/etc/shadow' }), /user\.client-certificate is not accepted/);
  refused(kubeconfig({}, { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' }), /user\.tokenFile is not accepted/);
  refused(kubeconfig({ 'certificate-authority': '/etc/ssl/ca.pem' }, certUser), /cluster\.certificate-authority is not accepted/);
  refused(kubeconfig({ 'proxy-url': 'http://attacker:3128' }, certUser), /cluster\.proxy-url is not accepted/);
  refused(kubeconfig({ 'insecure-skip-tls-verify': true }, certUser), /cluster\.insecure-skip-tls-verify is not accepted/);
  refused(kubeconfig({ server: 'http://10.0.0.1:6443' }, certUser), /must be an https:\/\/ URL/);
  refused(kubeconfig({ server: 'https://u:p@10.0.0.1' }, certUser), /must not carry credentials/);
  refused(kubeconfig({ 'certificate-authority-data': undefined }, certUser), /certificate-authority-data is missing/);
  refused(kubeconfig({}, {}), /no client-certificate-data\/client-key-data pair and no token/);
  refused('current-context: c\nclusters: !!js/function "function(){}"', /not valid YAML/);
  refused('[1, 2]', /not a YAML mapping/);
});

test('kubeconfig server vs the Cluster\'s controlPlaneEndpoint', () => {
  assert.is(endpointMismatch('https://10.0.0.1:6443', { host: '10.0.0.1', port: 6443 }), undefined);
  assert.is(endpointMismatch('https://[fd00::1]:6443', { host: 'fd00::1', port: 6443 }), undefined);
  assert.is(endpointMismatch('https://cp.example', { host: 'CP.example' }), undefined, 'port 443 by default');
  assert.is(endpointMismatch('https://anything:1', undefined), undefined, 'no endpoint yet: nothing to compare');
  assert.match(endpointMismatch('https://evil.example:6443', { host: '10.0.0.1', port: 6443 })!, /evil\.example:6443 is not the Cluster's spec\.controlPlaneEndpoint 10\.0\.0\.1:6443/);
});

test('htpasswd from the workload cluster: a hash at another cost is rewritten without hashing at that cost; extra entries force a rewrite', () => {
  const creds = { node: { username: 'node', password: newPassword() }, push: { username: 'push', password: newPassword() }, previous: [] };
  const ours = htpasswdFor(creds, undefined);
  assert.is(htpasswdFor(creds, ours), ours, 'our own file is kept');
  // A cost-31 entry would take ~116 hours to check: it must be treated as stale at once.
  const planted = ours.replace(/^node:\$2b\$04\$/m, 'node:$2b$31$');
  const started = performance.now();
  const rewritten = htpasswdFor(creds, planted);
  assert.ok(performance.now() - started < 1000, 'no hash at cost 31');
  assert.is.not(rewritten, planted);
  for (const line of rewritten.trim().split('\n')) assert.match(line, new RegExp(`^(node|push):\\$2b\\$0${BCRYPT_COST}\\$`));
  // A correct hash at a higher cost is also not trusted (we never run it).
  const costly = `node:${bcryptHash(creds.node.password, 5)}\n${ours.split('\n')[1]}\n`;
  assert.is.not(htpasswdFor(creds, costly), costly);
  assert.is.not(htpasswdFor(creds, `${ours}extra:$2b$04$${'a'.repeat(53)}\n`), `${ours}extra:$2b$04$${'a'.repeat(53)}\n`);
});

test('cluster issuer: signed by the root, CA pathLen 0, capped at the root\'s expiry; leaves carry the chain; a pathLen-0 root allows none', async () => {
  const root = await parseRootCa(await mintRootCa({ now: NOW }), 'root');
  assert.ok(rootAllowsIssuers(root));
  const issuerData = await mintClusterIssuer(root, { cluster: 'team-a/c1', now: new Date(NOW.getTime() + 5 * 365 * 86400_000) });
  const issuer = await parseRootCa(issuerData, 'issuer');
  const facts = certificateFacts(issuer.certificate);
  assert.ok(facts.isCA);
  assert.is(pathLength(issuer.certificate), 0);
  assert.is(facts.subject, 'O=capi-registry-addon, CN=registry issuer team-a/c1');
  assert.is(facts.notAfter.getTime(), certificateFacts(root.certificate).notAfter.getTime(), 'never outlives the root');
  assert.ok(await signedBy(issuer.certificate, root.certificate));
  assert.is(issuerData['ca.crt'], root.certPem);
  const leaf = await issueServerCertificate(issuer, { commonName: 'registry', dnsNames: ['registry'], ipAddresses: ['10.96.0.20'], now: NOW });
  assert.equal(parsePem(leaf['tls.crt']).length, 2, 'leaf, then the issuer');
  assert.is(leaf['ca.crt'], issuer.certPem);
  assert.ok(await signedBy(decodeCertificate(leaf['tls.crt'], 'leaf'), issuer.certificate));
  // Another Cluster's issuer did not sign it.
  const other = await parseRootCa(await mintClusterIssuer(root, { cluster: 'team-b/c2', now: NOW }), 'other');
  assert.not.ok(await signedBy(decodeCertificate(leaf['tls.crt'], 'leaf'), other.certificate));
  // A root from older builds (pathLen 0) cannot have issuers below it.
  const keys = await generateKeyPair('ecdsa-p256');
  const old = await buildCertificate({ commonName: 'old root', notBefore: NOW, notAfter: new Date(NOW.getTime() + 86400_000), ca: { pathLength: 0 }, keyUsage: [KeyUsageBit.keyCertSign], publicKey: keys.publicKey, selfPrivateKey: keys.privateKey });
  const oldRoot = await parseRootCa({ 'tls.crt': certificatePem(old), 'tls.key': await privateKeyPem(keys.privateKey) }, 'old');
  assert.not.ok(rootAllowsIssuers(oldRoot));
  assert.equal(parsePem((await issueServerCertificate(oldRoot, { commonName: 'r', dnsNames: ['r'], ipAddresses: [], now: NOW }))['tls.crt']).length, 1, 'a self-signed signer is not repeated in the chain');
});

test('trust bundle: the new issuer first, earlier CA certificates kept (each once, valid, at most three); garbage gives no trust', async () => {
  const root = await parseRootCa(await mintRootCa({ now: NOW }), 'root');
  const issuers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(async (n) => (await mintClusterIssuer(root, { cluster: `ns/${n}`, now: NOW }))['tls.crt']));
  const [current, ...older] = issuers as [string, ...string[]];
  const leaf = (await issueServerCertificate(await parseRootCa(await mintClusterIssuer(root, { cluster: 'ns/x', now: NOW }), 'x'), { commonName: 'r', dnsNames: ['r'], ipAddresses: [], now: NOW }))['tls.crt'];
  // Re-wrapped PEM (other line length, CRLF) is the same certificate.
  const rewrapped = older[0]!.replace(/\n/g, '\r\n');
  const previous = bundleAnchors(`${rewrapped}${older.join('')}${current}${leaf}`);
  const kept = anchorsToKeep(previous, current, NOW);
  assert.equal(kept.map((a) => a.pem), older.slice(0, MAX_PREVIOUS_ANCHORS), 'duplicates, the current issuer and non-CA certificates dropped; the first three kept');
  assert.equal(anchorsToKeep(previous, current, new Date(NOW.getTime() + 20 * 365 * 86400_000)), [], 'expired anchors are not kept');
  const bundle = trustBundle(current, kept);
  assert.equal(bundleAnchors(bundle).map((a) => a.pem), [current, ...older.slice(0, 3)]);
  assert.equal(bundleAnchors('-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n'), []);
  assert.equal(bundleAnchors(undefined), []);
});

test('rollover: Machines created before the bundle (or within the clock skew after it) still trust only the old issuer', () => {
  const since = new Date('2026-12-01T10:00:00Z');
  const machine = (name: string, created?: string) => ({ metadata: { name, ...(created ? { creationTimestamp: created } : {}) } });
  const machines = [machine('old-cp', '2026-11-01T00:00:00Z'), machine('racing', '2026-12-01T10:00:05Z'), machine('new-1', '2026-12-01T10:00:10Z'), machine('new-2', '2026-12-02T00:00:00Z'), machine('unknown')];
  assert.equal(machinesBefore(machines, since), ['old-cp', 'racing', 'unknown']);
  assert.equal(machinesBefore(machines.slice(2, 4), since), []);
  assert.equal(machinesBefore([], since), [], 'no Machines: nothing waits');
  // A recorded start from the future (a clock that ran ahead) is now: the rollover can end.
  const now = new Date('2026-12-04T12:00:00Z');
  assert.equal(clampedSince('2099-01-01T00:00:00Z', now), now);
  assert.equal(clampedSince('2026-12-01T10:00:00Z', now), since);
  assert.equal(clampedSince('garbage', now), now);
  assert.equal(clampedSince(undefined, now), now);
});

test('rollover: without a CA copy there is none, and the served chain is not read (a hung workload API server must not keep the copy from being put back)', async () => {
  const root = await mintRootCa({ now: new Date() });
  const signer = await parseRootCa(root, 'root');
  const unused = new Proxy({}, { get: () => () => assert.unreachable('no management call') }) as unknown as RolloverDeps['management'];
  const deps: RolloverDeps = { management: unused, providerNamespace: 'p', now: () => new Date() };
  const chainNeverRead = async (): Promise<string | undefined> => assert.unreachable('the chain was read') as never;
  assert.is(await currentRollover({ namespace: 'ns', name: 'c' } as Parameters<typeof currentRollover>[0], signer, deps, chainNeverRead, [], undefined), undefined);
});

test('a bounded counter keeps the most recently updated series and can drop a Cluster\'s', () => {
  const c = new Counter('x_total', 'x', 3);
  for (const n of ['a', 'b', 'c']) c.inc({ cluster: n });
  c.inc({ cluster: 'a' });
  c.inc({ cluster: 'd' });
  assert.is(c.size, 3);
  assert.is(c.get({ cluster: 'b' }), 0, 'least recently updated dropped');
  assert.is(c.get({ cluster: 'a' }), 2);
  c.remove((l) => l.cluster === 'a');
  assert.is(c.size, 2);
  assert.not.match(c.render(), /cluster="a"/);
});

test.run();
