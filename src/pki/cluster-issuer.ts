// One registry identity per Cluster. Every Cluster's registry certificate is issued by an intermediate CA
// of its own, signed by the root:
//   root CA Secret      -> trusts every Cluster's registry (root -> cluster issuer -> leaf; the registry
//                          serves the chain), as before;
//   <cluster>-...-ca    -> holds ONLY that Cluster's issuer: nodes (containerd, Go TLS) and regbot take
//                          it as their trust anchor, so a key from cluster A's registry (which any admin
//                          of workload cluster A can read) is worthless to cluster B's nodes, even at the
//                          same Service IP.
// The issuer's key stays in the provider namespace, beside the root's; tenants never see it.
import type * as pkijs from 'pkijs';
import { buildCertificate, certificatePem, generateKeyPair, KeyUsageBit, privateKeyPem } from './certificate.ts';
import { certificateFacts } from './inspect.ts';
import { ORGANIZATION, type RootCa, type TlsSecretData } from './root-ca.ts';

const YEAR_MS = 365 * 24 * 3600_000;
const BACKDATE_MS = 5 * 60_000;

/** The basicConstraints pathLenConstraint of a CA certificate; undefined when it sets none. */
export function pathLength(cert: pkijs.Certificate): number | undefined {
  const basic = cert.extensions?.find((e) => e.extnID === '2.5.29.19')?.parsedValue as pkijs.BasicConstraints | undefined;
  const value = basic?.pathLenConstraint;
  return typeof value === 'number' ? value : value === undefined ? undefined : Number(value.valueBlock.valueDec);
}

/**
 * Whether `root` may sign an intermediate: roots minted before per-cluster issuers carry pathLen 0,
 * which forbids any CA below them (both Go and OpenSSL enforce it). cert-manager's roots set none.
 */
export const rootAllowsIssuers = (root: RootCa): boolean => (pathLength(root.certificate) ?? 1) > 0;

/** Whether `cert` was signed by `ca`'s key (signature check, not name comparison). */
export async function signedBy(cert: pkijs.Certificate, ca: pkijs.Certificate): Promise<boolean> {
  try {
    return await cert.verify(ca);
  } catch {
    return false;
  }
}

/**
 * A Cluster's issuer: CA:true with pathLen 0 (it signs leaves only), keyCertSign, ten years capped at the
 * root's own expiry. Secret shape as cert-manager's: tls.crt/tls.key the issuer, ca.crt the root.
 */
export async function mintClusterIssuer(root: RootCa, opts: { cluster: string; now: Date }): Promise<TlsSecretData> {
  const keys = await generateKeyPair('ecdsa-p256');
  const rootNotAfter = certificateFacts(root.certificate).notAfter.getTime();
  const cert = await buildCertificate({
    // CN is at most 64 characters (RFC 5280 upper bound); the namespace/name is informative only.
    commonName: `registry issuer ${opts.cluster}`.slice(0, 64),
    organization: ORGANIZATION,
    notBefore: new Date(opts.now.getTime() - BACKDATE_MS),
    notAfter: new Date(Math.min(opts.now.getTime() + 10 * YEAR_MS, rootNotAfter)),
    ca: { pathLength: 0 },
    keyUsage: [KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign],
    publicKey: keys.publicKey,
    issuer: { certificate: root.certificate, privateKey: root.privateKey },
  });
  return { 'tls.crt': certificatePem(cert), 'tls.key': await privateKeyPem(keys.privateKey), 'ca.crt': root.certPem };
}
