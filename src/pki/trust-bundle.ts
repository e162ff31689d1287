// A Cluster's trust bundle: `ca.crt` of its CA copy, the file every node of the Cluster trusts for the
// registry. Normally one certificate, the Cluster's issuer. When the issuer changes under running nodes
// (a `clusterctl move` brings a new root, so a new issuer), the bundle holds the new issuer first and the
// issuers it replaces after it, until every node has booted with the bundle (trust rollover,
// src/addon/trust-rollover.ts). Pure.
import * as pkijs from 'pkijs';
import { certificateFacts } from './inspect.ts';
import { parsePem, toPem } from './pem.ts';

/** Earlier issuers kept at most: a copy someone stuffed with certificates does not grow the nodes' trust. */
export const MAX_PREVIOUS_ANCHORS = 3;

export interface Anchor {
  pem: string;
  certificate: pkijs.Certificate;
}

/**
 * The certificates of a bundle, each re-encoded from its DER (so whitespace or line length never makes
 * two equal certificates differ). Unreadable input yields none: a garbled copy gave its nodes no trust.
 */
export function bundleAnchors(text: string | undefined): Anchor[] {
  if (!text) return [];
  try {
    return parsePem(text)
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => ({ pem: toPem('CERTIFICATE', b.der), certificate: pkijs.Certificate.fromBER(b.der) }));
  } catch {
    return [];
  }
}

/**
 * Which of `previous` a rollover keeps beside `current`: CA certificates still valid at `now`, not the
 * current one, each once, at most MAX_PREVIOUS_ANCHORS (the first ones: the most recent issuers).
 */
export function anchorsToKeep(previous: Anchor[], current: string, now: Date): Anchor[] {
  const currentPem = bundleAnchors(current)[0]?.pem;
  const seen = new Set<string>(currentPem ? [currentPem] : []);
  const kept: Anchor[] = [];
  for (const a of previous) {
    if (seen.has(a.pem)) continue;
    seen.add(a.pem);
    const facts = certificateFacts(a.certificate);
    if (facts.isCA && facts.notAfter.getTime() > now.getTime() && kept.length < MAX_PREVIOUS_ANCHORS) kept.push(a);
  }
  return kept;
}

/** The bundle text: the current issuer first, then the kept earlier ones. */
export const trustBundle = (current: string, previous: Anchor[]): string => [current, ...previous.map((a) => a.pem)].map((p) => `${p.trim()}\n`).join('');
