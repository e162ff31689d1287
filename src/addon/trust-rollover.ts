// Trust rollover: moving a Cluster's registry from one issuer to another without a node ever
// distrusting the certificate it is served. It starts when the CA copy trusts an issuer we cannot sign
// with (after `clusterctl move` the new management cluster has a new root, and mints a new issuer):
//   1. the copy becomes a bundle, new issuer first, old after it (setup.ts): every node that boots from
//      now on trusts both; the registry keeps its certificate from the old issuer;
//   2. once every Machine of the Cluster was created after the bundle (an upgrade replaces them all,
//      the natural moment), the registry gets a certificate from the new issuer;
//   3. on the next pass (the pods have rolled to it), the old issuer is dropped from the copy.
// Upgrades are never held back: BeforeClusterUpgrade answers Success throughout.
import type { SecretClient } from '../kube/client.ts';
import { clusterCaSecretName } from '../render/metadata.ts';
import type { Anchor } from '../pki/trust-bundle.ts';
import { signedBy } from '../pki/cluster-issuer.ts';
import { decodeCertificate } from '../pki/inspect.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { clusterOwned } from './credentials.ts';

export interface TrustRollover {
  /** When the copy became a bundle (stored in it). */
  since: Date;
  /** The issuers the Cluster's older nodes trust. */
  previous: Anchor[];
}

/**
 * Machines created this soon after the bundle was written may have read the copy before it (their
 * bootstrap data is rendered after the Machine exists, but clocks of the extension and the API server
 * differ): they count as booted before, and wait for their replacement.
 */
export const ROLLOVER_SKEW_MS = 10_000;

/** The Machines (names) that may have booted with the old trust: created before `since` plus the skew. Pure. */
export function machinesBefore(machines: Record<string, unknown>[], since: Date): string[] {
  const cutoff = since.getTime() + ROLLOVER_SKEW_MS;
  return machines
    .filter((m) => {
      const created = Date.parse(String((m.metadata as { creationTimestamp?: unknown } | undefined)?.creationTimestamp ?? ''));
      return !(created >= cutoff);
    })
    .map((m) => String((m.metadata as { name?: unknown } | undefined)?.name ?? '?'))
    .sort();
}

/** The Cluster's Machines that may still trust only the old issuer. */
export async function machinesWithOldTrust(cluster: ClusterRef, management: SecretClient, apiVersion: string, since: Date): Promise<string[]> {
  const machines = await management.listObjects({ apiVersion, kind: 'Machine', namespace: cluster.namespace }, `cluster.x-k8s.io/cluster-name=${cluster.name}`);
  return machinesBefore(machines, since);
}

/** The earlier issuer that signed the served certificate, if one did (a certificate to keep during the rollover). */
export async function previousSigner(tlsCrt: string | undefined, previous: Anchor[]): Promise<Anchor | undefined> {
  if (!tlsCrt) return undefined;
  let leaf;
  try {
    leaf = decodeCertificate(tlsCrt, 'registry-tls');
  } catch {
    return undefined;
  }
  for (const anchor of previous) if (await signedBy(leaf, anchor.certificate)) return anchor;
  return undefined;
}

/** Names for a message: the first few and how many more. */
export const someNames = (names: string[], shown = 3): string => names.slice(0, shown).join(', ') + (names.length > shown ? ` and ${names.length - shown} more` : '');

export interface RolloverPass {
  management: SecretClient;
  /** The Cluster's API version for the copy's owner reference. */
  clusterApiVersion: string;
  /** The new issuer's certificate: what the copy holds once the rollover is over. */
  signerPem: string;
  rollover: TrustRollover;
  /** Machines that may still trust only the old issuer (machinesWithOldTrust). */
  oldTrust: string[];
  /** Whether this pass issued the registry a certificate (from the new issuer). */
  issuedNow: boolean;
}

/**
 * The rollover's next step after the workload Secrets were written, and the words for the hook's
 * message. The old issuer leaves the copy only on a pass after the switch: by then the pods serve the
 * new certificate, so a node that boots trusting only the new issuer is never served the old one.
 */
export async function advanceRollover(cluster: ClusterRef, p: RolloverPass): Promise<string> {
  const since = p.rollover.since.toISOString();
  if (p.oldTrust.length) {
    return `trust rollover since ${since}: Machine(s) ${someNames(p.oldTrust)} booted before it and trust only the previous issuer, so the registry keeps its certificate from that issuer until they are replaced (an upgrade replaces them); `;
  }
  if (p.issuedNow) return `trust rollover since ${since}: every Machine trusts the new issuer, so the registry now gets its certificate; the previous issuer leaves ${clusterCaSecretName(cluster.name)} on the next pass; `;
  await p.management.ensureSecret({ name: clusterCaSecretName(cluster.name), namespace: cluster.namespace, ...clusterOwned(cluster, p.clusterApiVersion), data: { 'ca.crt': p.signerPem } });
  return `trust rollover complete: ${clusterCaSecretName(cluster.name)} trusts only the new issuer; `;
}
