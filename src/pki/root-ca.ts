// The root CA: read from the Secret cert-manager writes (`registry-addon-root-ca`), or minted by us in
// the same shape. Ten years, self-signed, CA:true with pathLen 1, keyCertSign + cRLSign, SKI.
import type * as pkijs from 'pkijs';
import { buildCertificate, certificatePem, generateKeyPair, KeyUsageBit, privateKeyPem, type KeyAlgorithm } from './certificate.ts';
import { certificateFacts, decodeCertificate, PkiError } from './inspect.ts';
import { importPrivateKeyPem, keyMatchesCertificate } from './keys.ts';

/** Secret data as PEM text, keyed as in a kubernetes.io/tls Secret. */
export type TlsSecretData = {
  'tls.crt': string;
  'tls.key': string;
  'ca.crt': string;
};

export interface RootCa {
  certificate: pkijs.Certificate;
  certPem: string;
  privateKey: CryptoKey;
}

const YEAR_MS = 365 * 24 * 3600_000;
/** The Secret cert-manager writes (from our Certificate) or we mint, in the provider namespace. */
export const ROOT_CA_SECRET = 'registry-addon-root-ca';
export const ROOT_CA_COMMON_NAME = 'capi-registry-addon root CA';
export const ORGANIZATION = 'capi-registry-addon';

/** Parses and checks a root CA Secret; `what` names it in errors ("Secret ns/name"). */
export async function parseRootCa(data: Partial<Record<string, string>>, what: string): Promise<RootCa> {
  const certPem = data['tls.crt'];
  const keyPem = data['tls.key'];
  if (!certPem) throw new PkiError(`${what} has no tls.crt: it must be a kubernetes.io/tls Secret as cert-manager writes it`);
  if (!keyPem) throw new PkiError(`${what} has no tls.key: the root CA's private key is needed to issue registry certificates`);
  const certificate = decodeCertificate(certPem, `tls.crt of ${what}`);
  if (!certificateFacts(certificate).isCA) {
    throw new PkiError(`tls.crt of ${what} is not a CA certificate (basicConstraints CA:true is missing): point the Certificate at isCA: true`);
  }
  const usage = certificate.extensions?.find((e) => e.extnID === '2.5.29.15');
  if (usage) {
    const bits = new Uint8Array((usage.parsedValue as { valueBlock: { valueHexView: Uint8Array } }).valueBlock.valueHexView);
    if (!((bits[0] ?? 0) & (0x80 >> KeyUsageBit.keyCertSign))) throw new PkiError(`tls.crt of ${what} may not sign certificates (keyUsage lacks keyCertSign)`);
  }
  let privateKey: CryptoKey;
  let matches: boolean;
  try {
    privateKey = await importPrivateKeyPem(keyPem);
    matches = await keyMatchesCertificate(certPem, keyPem);
  } catch (err) {
    if (err instanceof PkiError) throw new PkiError(`tls.key of ${what}: ${err.message}`);
    throw err;
  }
  if (!matches) throw new PkiError(`tls.key of ${what} does not belong to its tls.crt: the Secret is inconsistent`);
  return { certificate, certPem, privateKey };
}

/** A new self-signed root CA in cert-manager's Secret shape (ca.crt = tls.crt for a self-signed CA). */
export async function mintRootCa(opts: { now: Date; keyAlgorithm?: KeyAlgorithm }): Promise<TlsSecretData> {
  const keys = await generateKeyPair(opts.keyAlgorithm ?? 'ecdsa-p256');
  const cert = await buildCertificate({
    commonName: ROOT_CA_COMMON_NAME,
    organization: ORGANIZATION,
    notBefore: new Date(opts.now.getTime() - 5 * 60_000),
    notAfter: new Date(opts.now.getTime() + 10 * YEAR_MS),
    // pathLen 1: the root signs one issuer per Cluster, which signs that Cluster's registry (cluster-issuer.ts).
    ca: { pathLength: 1 },
    keyUsage: [KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign],
    publicKey: keys.publicKey,
    selfPrivateKey: keys.privateKey,
  });
  const pem = certificatePem(cert);
  return { 'tls.crt': pem, 'tls.key': await privateKeyPem(keys.privateKey), 'ca.crt': pem };
}
