// X.509 certificate building with pkijs/asn1js on WebCrypto. Pure apart from WebCrypto randomness and
// key generation; every date comes in as a parameter so callers (and tests) control time.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { parseIp } from '../lib/ip.ts';
import { toPem } from './pem.ts';

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** KeyUsage bits, numbered as in RFC 5280 §4.2.1.3. */
export const KeyUsageBit = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048';

const KEY_PARAMS: Record<KeyAlgorithm, EcKeyGenParams | RsaHashedKeyGenParams> = {
  'ecdsa-p256': { name: 'ECDSA', namedCurve: 'P-256' },
  'ecdsa-p384': { name: 'ECDSA', namedCurve: 'P-384' },
  'rsa-2048': { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
};

export const generateKeyPair = (alg: KeyAlgorithm): Promise<CryptoKeyPair> =>
  crypto.subtle.generateKey(KEY_PARAMS[alg], true, ['sign', 'verify']) as Promise<CryptoKeyPair>;

export interface CertificateSpec {
  commonName: string;
  organization?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore: Date;
  notAfter: Date;
  /** CA certificates get basicConstraints CA:true with this path length. */
  ca?: { pathLength: number };
  keyUsage: number[];
  serverAuth?: boolean;
  /** The subject's public key. */
  publicKey: CryptoKey;
  /** Signer; absent means self-signed with `selfPrivateKey`. */
  issuer?: { certificate: pkijs.Certificate; privateKey: CryptoKey };
  selfPrivateKey?: CryptoKey;
}

/**
 * A Name with one attribute per RDN (pkijs would put them all in one multi-valued RDN, which
 * RFC 5280 allows but tools and linters treat as an error-prone oddity).
 */
function distinguishedName(attributes: readonly (readonly [string, string])[]): pkijs.RelativeDistinguishedNames {
  const der = new asn1js.Sequence({
    value: attributes.map(([type, value]) => new asn1js.Set({
      value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: type }), new asn1js.Utf8String({ value })] })],
    })),
  }).toBER(false);
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(der).result });
}

/**
 * pkijs 4.0 writes sha256WithRSAEncryption without the NULL parameter that RFC 4055 §5 (and zlint's
 * e_tbs_signature_rsa_encryption_parameter_not_null) require; this engine adds it.
 */
function rfc4055Engine(): pkijs.ICryptoEngine {
  const engine = pkijs.getCrypto(true);
  const patched = Object.create(engine) as pkijs.ICryptoEngine;
  patched.getSignatureParameters = async (key, hash) => {
    const params = await engine.getSignatureParameters(key, hash);
    if (key.algorithm.name === 'RSASSA-PKCS1-v1_5') params.signatureAlgorithm.algorithmParams = new asn1js.Null();
    return params;
  };
  return patched;
}

/** 128-bit random positive serial, minimally DER-encoded. */
function randomSerial(): asn1js.Integer {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  if (bytes[0] === 0) bytes[0] = 1;
  const value = bytes[0]! >= 0x80 ? Uint8Array.of(0, ...bytes) : bytes;
  return new asn1js.Integer({ valueHex: value });
}

function keyUsageBits(bits: number[]): asn1js.BitString {
  const highest = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return new asn1js.BitString({ valueHex: bytes, unusedBits: bytes.length * 8 - highest - 1 });
}

const extension = (extnID: string, critical: boolean, value: { toSchema(): asn1js.AsnType } | asn1js.AsnType) =>
  new pkijs.Extension({
    extnID,
    critical,
    extnValue: ('toSchema' in value ? value.toSchema() : value).toBER(false),
  });

async function keyIdentifier(spki: pkijs.PublicKeyInfo): Promise<Uint8Array> {
  // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
  return new Uint8Array(await crypto.subtle.digest('SHA-1', spki.subjectPublicKey.valueBlock.valueHexView.slice()));
}

const signingHash = (key: CryptoKey): string => ((key.algorithm as EcKeyAlgorithm).namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256');

export async function buildCertificate(spec: CertificateSpec): Promise<pkijs.Certificate> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = randomSerial();
  cert.subject = distinguishedName([
    ...(spec.organization ? ([[OID.organization, spec.organization]] as const) : []),
    [OID.commonName, spec.commonName],
  ]);
  // The issuer is copied byte for byte from the CA's subject, as path building compares them.
  cert.issuer = spec.issuer ? spec.issuer.certificate.subject : distinguishedName([
    ...(spec.organization ? ([[OID.organization, spec.organization]] as const) : []),
    [OID.commonName, spec.commonName],
  ]);
  cert.notBefore.value = spec.notBefore;
  cert.notAfter.value = spec.notAfter;
  await cert.subjectPublicKeyInfo.importKey(spec.publicKey);

  const extensions: pkijs.Extension[] = [
    extension(OID.basicConstraints, true, new pkijs.BasicConstraints(spec.ca ? { cA: true, pathLenConstraint: spec.ca.pathLength } : {})),
    extension(OID.keyUsage, true, keyUsageBits(spec.keyUsage)),
  ];
  if (spec.serverAuth) extensions.push(extension(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth] })));
  const altNames = [
    ...(spec.dnsNames ?? []).map((name) => new pkijs.GeneralName({ type: 2, value: name })),
    ...(spec.ipAddresses ?? []).map((ip) => {
      const bytes = parseIp(ip);
      if (!bytes) throw new Error(`certificate IP SAN ${JSON.stringify(ip)} is not an IP address`);
      return new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: bytes }) });
    }),
  ];
  if (altNames.length) extensions.push(extension(OID.subjectAltName, false, new pkijs.AltName({ altNames })));
  const ski = await keyIdentifier(cert.subjectPublicKeyInfo);
  extensions.push(extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: ski })));
  if (spec.issuer) {
    const aki = await keyIdentifier(spec.issuer.certificate.subjectPublicKeyInfo);
    extensions.push(extension(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: aki }) })));
  }
  cert.extensions = extensions;

  const signer = spec.issuer?.privateKey ?? spec.selfPrivateKey;
  if (!signer) throw new Error('buildCertificate needs an issuer or a self-signing private key');
  await cert.sign(signer, signingHash(signer), rfc4055Engine());
  return cert;
}

export const certificatePem = (cert: pkijs.Certificate): string => toPem('CERTIFICATE', cert.toSchema(true).toBER(false));

export const privateKeyPem = async (key: CryptoKey): Promise<string> => toPem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', key));

/**
 * A throw-away serving certificate for the extension's own HTTPS port, used when no certificate files
 * are mounted (local runs, tests). Valid one year from `now`, backdated five minutes for clock skew.
 */
export async function selfSignedServingCert(opts: { dnsNames: string[]; ipAddresses: string[]; now: Date }) {
  const keys = await generateKeyPair('ecdsa-p256');
  const cert = await buildCertificate({
    commonName: 'capi-registry-addon',
    dnsNames: opts.dnsNames,
    ipAddresses: opts.ipAddresses,
    notBefore: new Date(opts.now.getTime() - 5 * 60_000),
    notAfter: new Date(opts.now.getTime() + 365 * 24 * 3600_000),
    keyUsage: [KeyUsageBit.digitalSignature],
    serverAuth: true,
    publicKey: keys.publicKey,
    selfPrivateKey: keys.privateKey,
  });
  return { certPem: certificatePem(cert), keyPem: await privateKeyPem(keys.privateKey) };
}
