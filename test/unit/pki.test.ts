// Certificate building, checked by parsing the DER back with pkijs (openssl checks it in integration).
import * as pkijs from 'pkijs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { selfSignedServingCert } from '../../src/pki/certificate.ts';
import { generateKeyPair, privateKeyPem } from '../../src/pki/certificate.ts';
import { certificateFacts, decodeCertificate, PkiError } from '../../src/pki/inspect.ts';
import { mintRootCa, parseRootCa } from '../../src/pki/root-ca.ts';
import { issueServerCertificate, needsRenewal } from '../../src/pki/server-cert.ts';
import { importPrivateKeyPem, keyMatchesCertificate } from '../../src/pki/keys.ts';
import { parsePem, toPem } from '../../src/pki/pem.ts';

const test = suite('pki');

test('self-signed serving certificate: SANs, EKU serverAuth, not a CA, dates, positive 128-bit serial', async () => {
  const now = new Date('2026-03-01T12:00:00Z');
  const { certPem, keyPem } = await selfSignedServingCert({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], now });
  assert.equal(parsePem(keyPem).map((b) => b.label), ['PRIVATE KEY']);
  const cert = pkijs.Certificate.fromBER(parsePem(certPem)[0]!.der);
  assert.is(cert.notBefore.value.toISOString(), '2026-03-01T11:55:00.000Z');
  assert.is(cert.notAfter.value.toISOString(), '2027-03-01T12:00:00.000Z');
  const ext = (oid: string) => cert.extensions!.find((e) => e.extnID === oid)!;
  const san = ext('2.5.29.17').parsedValue as pkijs.AltName;
  assert.equal(san.altNames.map((n) => n.type), [2, 7, 7]);
  assert.is(san.altNames[0]!.value, 'localhost');
  assert.equal(ext('2.5.29.37').parsedValue.keyPurposes, ['1.3.6.1.5.5.7.3.1']);
  assert.is(ext('2.5.29.19').critical, true);
  assert.not.ok((ext('2.5.29.19').parsedValue as pkijs.BasicConstraints).cA);
  const serial = cert.serialNumber.valueBlock.valueHexView;
  assert.ok(serial.length === 16 || (serial.length === 17 && serial[0] === 0), `serial length ${serial.length}`);
  assert.ok(serial[0]! < 0x80, 'serial is positive');
  assert.ok(await cert.verify(), 'self-signature verifies');
});

test('key/certificate match: same pair yes, other key no, other algorithm no; errors never quote the key', async () => {
  const now = new Date();
  const a = await selfSignedServingCert({ dnsNames: ['a'], ipAddresses: [], now });
  const b = await selfSignedServingCert({ dnsNames: ['b'], ipAddresses: [], now });
  assert.ok(await keyMatchesCertificate(a.certPem, a.keyPem));
  assert.not.ok(await keyMatchesCertificate(a.certPem, b.keyPem));
  const rsa = await generateKeyPair('rsa-2048');
  assert.not.ok(await keyMatchesCertificate(a.certPem, await privateKeyPem(rsa.privateKey)));
  for (const [pem, message] of [
    ['nothing here', /no PEM private key found/],
    ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', /PRIVATE KEY could not be decoded/],
    ['-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----', /EC private key uses an unsupported curve/],
  ] as const) {
    try {
      await importPrivateKeyPem(pem);
      assert.unreachable(pem);
    } catch (err) {
      assert.match((err as Error).message, message);
      assert.not.match((err as Error).message, /AAAA|MAA=/);
    }
  }
});

const day = 24 * 3600_000;
const NOW = new Date('2026-06-01T00:00:00Z');
const SANS = { commonName: 'registry', dnsNames: ['registry.capi-registry.svc', 'localhost'], ipAddresses: ['10.96.0.20', '127.0.0.1'] };

test('minted root CA: 10 years, CA:true pathLen 1 (one issuer per Cluster below it), keyCertSign+cRLSign, SKI; parses back as a usable root', async () => {
  for (const keyAlgorithm of ['ecdsa-p256', 'rsa-2048'] as const) {
    const secret = await mintRootCa({ now: NOW, keyAlgorithm });
    assert.is(secret['ca.crt'], secret['tls.crt']);
    const root = await parseRootCa(secret, 'Secret test/root');
    const facts = certificateFacts(root.certificate);
    assert.ok(facts.isCA);
    assert.is(facts.subject, 'O=capi-registry-addon, CN=capi-registry-addon root CA');
    assert.is(facts.notAfter.getTime() - NOW.getTime(), 3650 * day);
    assert.ok(facts.subjectKeyId && facts.subjectKeyId.length === 40);
    const basic = root.certificate.extensions!.find((e) => e.extnID === '2.5.29.19')!.parsedValue as pkijs.BasicConstraints;
    assert.is(basic.pathLenConstraint, 1);
    const ku = new Uint8Array((root.certificate.extensions!.find((e) => e.extnID === '2.5.29.15')!.parsedValue as any).valueBlock.valueHexView);
    assert.is(ku[0], 0x86, 'digitalSignature, keyCertSign, cRLSign');
  }
});

test('server certificate: exact SANs, 2 years from 5 minutes ago, serverAuth, not a CA, AKI = root SKI, verified by the root', async () => {
  const root = await parseRootCa(await mintRootCa({ now: NOW }), 'root');
  for (const keyAlgorithm of ['ecdsa-p256', 'rsa-2048'] as const) {
    const secret = await issueServerCertificate(root, { ...SANS, now: NOW, keyAlgorithm });
    assert.is(secret['ca.crt'], root.certPem);
    const leaf = decodeCertificate(secret['tls.crt'], 'leaf');
    const facts = certificateFacts(leaf);
    assert.equal([facts.dnsNames, facts.ipAddresses], [SANS.dnsNames, SANS.ipAddresses]);
    assert.is(facts.subject, 'O=capi-registry-addon, CN=registry');
    assert.is(facts.issuer, certificateFacts(root.certificate).subject);
    assert.is(facts.notBefore.getTime(), NOW.getTime() - 5 * 60_000);
    assert.is(facts.notAfter.getTime(), NOW.getTime() + 730 * day);
    assert.not.ok(facts.isCA);
    assert.is(facts.authorityKeyId, certificateFacts(root.certificate).subjectKeyId);
    assert.ok(await leaf.verify(root.certificate));
    assert.ok(await keyMatchesCertificate(secret['tls.crt'], secret['tls.key']));
    const ku = new Uint8Array((leaf.extensions!.find((e) => e.extnID === '2.5.29.15')!.parsedValue as any).valueBlock.valueHexView);
    assert.is(ku[0], keyAlgorithm === 'rsa-2048' ? 0xa0 : 0x80, `${keyAlgorithm} key usage`);
  }
});

test('needsRenewal: fresh no; missing, expired, in window, other CA, changed SANs yes, each with its reason', async () => {
  const root = await parseRootCa(await mintRootCa({ now: NOW }), 'root');
  const other = await parseRootCa(await mintRootCa({ now: NOW }), 'other');
  const secret = await issueServerCertificate(root, { ...SANS, now: NOW });
  const policy = { dnsNames: SANS.dnsNames, ipAddresses: SANS.ipAddresses };
  const at = (days: number) => new Date(NOW.getTime() + days * day);
  assert.equal(await needsRenewal(secret, root, { ...policy, now: at(1) }), { renew: false, reasons: [] });
  assert.equal(await needsRenewal(undefined, root, { ...policy, now: at(1) }), { renew: true, reasons: ['no server certificate yet'] });
  assert.match((await needsRenewal(secret, root, { ...policy, now: at(731) })).reasons.join(), /expired on 2028-05-31/);
  assert.match((await needsRenewal(secret, root, { ...policy, now: at(710) })).reasons.join(), /within the renewal window/);
  assert.equal((await needsRenewal(secret, root, { ...policy, now: at(690), windowMs: 60 * day })).renew, true);
  assert.equal((await needsRenewal(secret, other, { ...policy, now: at(1) })).reasons, ["not signed by the Cluster's current issuer"]);
  assert.match((await needsRenewal(secret, root, { ...policy, ipAddresses: ['10.96.0.21', '127.0.0.1'], now: at(1) })).reasons.join(), /differ from the registry's/);
  // The same IPs written differently are the same SANs.
  assert.is((await needsRenewal(secret, root, { dnsNames: [...SANS.dnsNames].reverse(), ipAddresses: ['127.0.0.1', '10.96.0.20'], now: at(1) })).renew, false);
  assert.match((await needsRenewal({ 'tls.crt': 'garbage', 'tls.key': 'x' }, root, { ...policy, now: at(1) })).reasons.join(), /no PEM CERTIFICATE/);
});

test('a leaf never outlives its signer; near the signer\'s end, renewing cannot extend it, so the window is no reason (no renewal at every pass)', async () => {
  const root = await parseRootCa(await mintRootCa({ now: NOW }), 'root');
  const rootEnd = certificateFacts(root.certificate).notAfter.getTime();
  const late = new Date(rootEnd - 100 * day);
  const secret = await issueServerCertificate(root, { ...SANS, now: late });
  assert.is(certificateFacts(decodeCertificate(secret['tls.crt'], 'leaf')).notAfter.getTime(), rootEnd, 'capped at the signer');
  const policy = { dnsNames: SANS.dnsNames, ipAddresses: SANS.ipAddresses };
  assert.equal(await needsRenewal(secret, root, { ...policy, now: new Date(rootEnd - 10 * day) }), { renew: false, reasons: [] });
  assert.match((await needsRenewal(secret, root, { ...policy, now: new Date(rootEnd + day) })).reasons.join(), /expired on/);
});

test('root CA Secret errors: missing keys, truncated or wrong PEM, not a CA, mismatched key; never key material', async () => {
  const good = await mintRootCa({ now: NOW });
  const otherKey = (await mintRootCa({ now: NOW }))['tls.key'];
  const leafOnly = await selfSignedServingCert({ dnsNames: ['x'], ipAddresses: [], now: NOW });
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'tls.key': good['tls.key'] }, /has no tls\.crt: it must be a kubernetes\.io\/tls Secret/],
    [{ 'tls.crt': good['tls.crt'] }, /has no tls\.key/],
    [{ ...good, 'tls.crt': good['tls.crt'].slice(0, 200) }, /holds no PEM CERTIFICATE \(empty, truncated or not PEM\)/],
    [{ ...good, 'tls.crt': good['tls.key'] }, /holds a PEM PRIVATE KEY, not a CERTIFICATE/],
    [{ ...good, 'tls.crt': toPem('CERTIFICATE', parsePem(good['tls.crt'])[0]!.der.slice(0, 150)) }, /CERTIFICATE that cannot be decoded \(truncated or corrupt\)/],
    [{ ...good, 'tls.crt': good['tls.crt'].replace(/\n[A-Za-z0-9+/]{10}/, '\n@@@@@@@@@@') }, /not valid base64 \(truncated or corrupt\)/],
    [{ 'tls.crt': leafOnly.certPem, 'tls.key': leafOnly.keyPem }, /is not a CA certificate/],
    [{ ...good, 'tls.key': otherKey }, /tls\.key of Secret s does not belong to its tls\.crt/],
    [{ ...good, 'tls.key': good['tls.key'].slice(0, 100) }, /no PEM private key found/],
  ];
  for (const [data, message] of cases) {
    try {
      await parseRootCa(data, 'Secret s');
      assert.unreachable(String(message));
    } catch (err) {
      assert.instance(err, PkiError, `${String(message)}: ${(err as Error).message}`);
      assert.match((err as Error).message, message);
      assert.not.match((err as Error).message, /BEGIN|MII|MHc/);
    }
  }
});

test.run();
