// Certificate building, checked by parsing the DER back with pkijs (openssl checks it in integration).
import * as pkijs from 'pkijs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

import { selfSignedServingCert } from '../../src/pki/certificate.ts';
import { generateKeyPair, privateKeyPem } from '../../src/pki/certificate.ts';
import { importPrivateKeyPem, keyMatchesCertificate } from '../../src/pki/keys.ts';
import { parsePem } from '../../src/pki/pem.ts';

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

test.run();
