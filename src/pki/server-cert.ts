// The registry's server certificate: issued by the Cluster's issuer for two years (never past the
// issuer's own end), and the renewal decision.
import { buildCertificate, certificatePem, generateKeyPair, KeyUsageBit, privateKeyPem, type KeyAlgorithm } from './certificate.ts';
import { certificateFacts, decodeCertificate, PkiError } from './inspect.ts';
import type { RootCa, TlsSecretData } from './root-ca.ts';
import { ORGANIZATION } from './root-ca.ts';
import { parseIp, formatIp } from '../lib/ip.ts';
import { hexFromBytes } from '../lib/bytes.ts';

const DAY_MS = 24 * 3600_000;
/** Two years, as the design promises nodes; backdated for clock skew between clusters. */
export const SERVER_CERT_VALIDITY_MS = 730 * DAY_MS;
export const BACKDATE_MS = 5 * 60_000;

export interface ServerCertRequest {
  /** CN: the registry Service name. */
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  now: Date;
  keyAlgorithm?: Extract<KeyAlgorithm, 'ecdsa-p256' | 'rsa-2048'>;
}

const selfIssued = (c: { subject: { toSchema(): { toBER(s: boolean): ArrayBuffer } }; issuer: { toSchema(): { toBER(s: boolean): ArrayBuffer } } }) =>
  hexFromBytes(c.subject.toSchema().toBER(false)) === hexFromBytes(c.issuer.toSchema().toBER(false));

/**
 * Issues the leaf and returns the `registry-tls` Secret data: tls.crt is the leaf followed by the signer
 * when the signer is an intermediate (a client trusting the root needs it to build the chain); ca.crt is
 * the signer (what the Cluster's nodes and the sync sidecars trust).
 */
export async function issueServerCertificate(root: RootCa, req: ServerCertRequest): Promise<TlsSecretData> {
  if (!req.dnsNames.length && !req.ipAddresses.length) throw new PkiError('a server certificate needs at least one DNS name or IP address');
  const algorithm = req.keyAlgorithm ?? 'ecdsa-p256';
  const keys = await generateKeyPair(algorithm);
  const cert = await buildCertificate({
    commonName: req.commonName,
    organization: ORGANIZATION,
    dnsNames: req.dnsNames,
    ipAddresses: req.ipAddresses,
    notBefore: new Date(req.now.getTime() - BACKDATE_MS),
    // Never past the signer: a leaf that outlives its issuer is not valid that long anyway.
    notAfter: new Date(Math.min(req.now.getTime() + SERVER_CERT_VALIDITY_MS, certificateFacts(root.certificate).notAfter.getTime())),
    // keyEncipherment only where the key can encipher (RSA key exchange); ECDSA keys only sign.
    keyUsage: algorithm === 'rsa-2048' ? [KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment] : [KeyUsageBit.digitalSignature],
    serverAuth: true,
    publicKey: keys.publicKey,
    issuer: { certificate: root.certificate, privateKey: root.privateKey },
  });
  const chain = selfIssued(root.certificate) ? '' : root.certPem;
  return { 'tls.crt': certificatePem(cert) + chain, 'tls.key': await privateKeyPem(keys.privateKey), 'ca.crt': root.certPem };
}

export interface RenewalPolicy {
  now: Date;
  /** Renew this long before expiry. */
  windowMs?: number;
  /** The SANs the certificate must carry now. */
  dnsNames: string[];
  ipAddresses: string[];
}

export const DEFAULT_RENEWAL_WINDOW_MS = 30 * DAY_MS;
const SIGNER_END_SLACK_MS = 3600_000;

export interface RenewalDecision {
  renew: boolean;
  /** Why, in words an operator reads in an event or a hook message. Empty when no renewal is needed. */
  reasons: string[];
}

const canonicalIp = (ip: string) => {
  const bytes = parseIp(ip);
  return bytes ? formatIp(bytes) : ip;
};
const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

/**
 * Decides whether the `registry-tls` Secret must be renewed: missing or unreadable, expired or within
 * the window, not issued by `root` (signature check against the root's key), or SANs changed.
 */
export async function needsRenewal(secret: Partial<Record<string, string>> | undefined, root: Pick<RootCa, 'certificate'>, policy: RenewalPolicy): Promise<RenewalDecision> {
  if (!secret?.['tls.crt'] || !secret['tls.key']) return { renew: true, reasons: ['no server certificate yet'] };
  let leaf;
  try {
    leaf = decodeCertificate(secret['tls.crt'], 'tls.crt of registry-tls');
  } catch (err) {
    return { renew: true, reasons: [(err as Error).message] };
  }
  const facts = certificateFacts(leaf);
  const reasons: string[] = [];
  const now = policy.now.getTime();
  // A leaf that already runs until its signer ends cannot be extended by renewing it: not a reason
  // (else every pass would issue one and roll the pods); the signer's own renewal is.
  const signerEnd = certificateFacts(root.certificate).notAfter.getTime();
  const extendable = facts.notAfter.getTime() < signerEnd - SIGNER_END_SLACK_MS;
  if (facts.notAfter.getTime() <= now) reasons.push(`expired on ${facts.notAfter.toISOString()}`);
  else if (extendable && facts.notAfter.getTime() - now <= (policy.windowMs ?? DEFAULT_RENEWAL_WINDOW_MS)) reasons.push(`expires on ${facts.notAfter.toISOString()}, within the renewal window`);
  let signedByRoot = false;
  try {
    signedByRoot = await leaf.verify(root.certificate);
  } catch {
    signedByRoot = false;
  }
  if (!signedByRoot) reasons.push("not signed by the Cluster's current issuer");
  if (!sameSet(facts.dnsNames, policy.dnsNames) || !sameSet(facts.ipAddresses.map(canonicalIp), policy.ipAddresses.map(canonicalIp))) {
    reasons.push('its DNS names or IP addresses differ from the registry\'s');
  }
  return { renew: reasons.length > 0, reasons };
}
