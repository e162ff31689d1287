// Trust rollover: moving a Cluster's registry from one issuer to another without a node ever
// distrusting the certificate it is served. It starts when the registry serves a certificate that the
// Cluster's issuer did not sign (after `clusterctl move` the new management cluster has a new root, and
// mints a new issuer):
//   0. the issuer the served chain names (the one that signed it) is recorded in the provider namespace,
//      with the time, when the CA copy trusts it too (a copy that holds no certificate at all, garbled,
//      says nothing either way): it takes both the workload cluster's registry-tls and the management
//      cluster's copy to start one. From then on the record, not the copy, says what older nodes trust:
//      whoever can write Secrets in the Cluster's namespace can put any CA into the copy; none is kept;
//   1. the copy becomes a bundle, new issuer first, the recorded one after it (setup.ts): every node
//      that boots from now on trusts both; the registry keeps its certificate from the old issuer;
//   2. once every Machine of the Cluster was created after the start (an upgrade replaces them all, the
//      natural moment), the registry gets a certificate from the new issuer;
//   3. once the registry's pods serve it (their template carries its checksum and the StatefulSet has
//      rolled), the old issuer is dropped from the copy and the record deleted.
// Upgrades are never held back: BeforeClusterUpgrade answers Success throughout.
import type { KubeClient } from '../kube/client.ts';
import { clusterCaSecretName, REGISTRY, rolloverRecordSecretName, STATEFULSET_REF } from '../render/metadata.ts';
import { anchorsToKeep, bundleAnchors, type Anchor } from '../pki/trust-bundle.ts';
import { signedBy } from '../pki/cluster-issuer.ts';
import { decodeCertificate } from '../pki/inspect.ts';
import type { RootCa } from '../pki/root-ca.ts';
import { sha256Hex } from '../render/digest.ts';
import { TLS_SHA_POD_ANNOTATION } from '../render/workload.ts';
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

export interface RolloverDeps {
  management: KubeClient;
  providerNamespace: string;
  now: () => Date;
}

/** A start time as recorded, never later than `now` (a clock that ran ahead must not keep a rollover open). Pure. */
export function clampedSince(text: string | undefined, now: Date): Date {
  const t = text ? Date.parse(text) : NaN;
  return new Date(Number.isFinite(t) ? Math.min(t, now.getTime()) : now.getTime());
}

/**
 * The rollover a Cluster is in, if any. With a record: its issuer while still a valid CA (an expired one
 * ends the rollover: the record goes), its start clamped to now. Without one: when `servedChain` gives
 * the registry's chain and its leaf was signed not by `signer` but by the CA certificate after it, and
 * the CA copy trusts that CA (`copyTrusts`: empty when there is no copy, so no rollover; undefined when
 * it holds no readable certificate, so it has no say), that CA is recorded now and the rollover starts.
 * `record`: the record as the caller read it (with its other reads, in one round trip). Before the control plane is initialized there is no chain
 * (and no node): never a rollover.
 */
export async function currentRollover(cluster: ClusterRef, signer: RootCa, deps: RolloverDeps, servedChain: (() => Promise<string | undefined>) | undefined, copyTrusts: Anchor[] | undefined, record: Record<string, string> | undefined): Promise<TrustRollover | undefined> {
  const name = await rolloverRecordSecretName(cluster.namespace, cluster.name);
  const now = deps.now();
  if (record) {
    const previous = anchorsToKeep(bundleAnchors(record['ca.crt']), signer.certPem, now);
    if (previous.length) return { since: clampedSince(record.since, now), previous };
    await deps.management.deleteObject({ apiVersion: 'v1', kind: 'Secret', namespace: deps.providerNamespace, name });
    return undefined;
  }
  // No copy, no rollover: the chain is not read (the copy is put back while the workload API server hangs).
  if (copyTrusts?.length === 0) return undefined;
  const chain = servedChain ? bundleAnchors(await servedChain()) : [];
  const leaf = chain[0];
  if (!leaf || (await signedBy(leaf.certificate, signer.certificate))) return undefined;
  const candidates = anchorsToKeep(chain.slice(1), signer.certPem, now);
  let issuer: Anchor | undefined;
  for (const a of candidates) if (!issuer && (await signedBy(leaf.certificate, a.certificate))) issuer = a;
  if (!issuer || (copyTrusts && !copyTrusts.some((t) => t.pem === issuer!.pem))) return undefined;
  // Create-if-absent: concurrent passes agree on one start.
  await deps.management.createSecret({
    name, namespace: deps.providerNamespace, labels: { ...REGISTRY.labels, 'cluster.x-k8s.io/cluster-name': cluster.name, 'capi-registry-addon.io/cluster-namespace': cluster.namespace },
    data: { 'ca.crt': issuer.pem, since: now.toISOString() },
  });
  const stored = await deps.management.getSecret(deps.providerNamespace, name);
  return { since: clampedSince(stored?.since, now), previous: anchorsToKeep(bundleAnchors(stored?.['ca.crt']), signer.certPem, now) };
}

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
export async function machinesWithOldTrust(cluster: ClusterRef, management: KubeClient, apiVersion: string, since: Date): Promise<string[]> {
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
  management: KubeClient;
  providerNamespace: string;
  /** The workload cluster: where the registry's pods show which certificate they serve. */
  workload: KubeClient;
  /** The Cluster's API version for the copy's owner reference. */
  clusterApiVersion: string;
  /** The new issuer: what the copy holds once the rollover is over. */
  signer: RootCa;
  /** The registry's tls.crt as written this pass. */
  tlsCrt: string;
  rollover: TrustRollover;
  /** Machines that may still trust only the old issuer (machinesWithOldTrust). */
  oldTrust: string[];
  /** Whether this pass issued the registry a certificate (from the new issuer). */
  issuedNow: boolean;
}

/**
 * Whether the registry's pods serve `tlsCrt`: their template carries its checksum and the StatefulSet has
 * rolled every replica to that template and they are Ready. Else what is still missing, in words.
 */
export async function servedBy(workload: KubeClient, tlsCrt: string): Promise<string | undefined> {
  const set = (await workload.getObject(STATEFULSET_REF)) as { metadata?: { generation?: number }; spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } }; status?: Record<string, unknown> } | undefined;
  if (!set) return 'the registry StatefulSet is not there yet';
  if (set.spec?.template?.metadata?.annotations?.[TLS_SHA_POD_ANNOTATION] !== (await sha256Hex(tlsCrt))) return 'the registry\'s pod template does not carry the new certificate yet (CAAPH has not upgraded the release)';
  const st = (set.status ?? {}) as { observedGeneration?: number; replicas?: number; updatedReplicas?: number; readyReplicas?: number; currentRevision?: string; updateRevision?: string };
  const want = set.spec?.replicas ?? 1;
  const rolled = (st.observedGeneration ?? 0) >= (set.metadata?.generation ?? 0) && st.updatedReplicas === want && st.readyReplicas === want && st.currentRevision === st.updateRevision;
  return rolled ? undefined : `the registry's pods have not all rolled to it (${st.updatedReplicas ?? 0}/${want} updated, ${st.readyReplicas ?? 0}/${want} Ready)`;
}

/**
 * The rollover's next step after the workload Secrets were written, and the words for the hook's
 * message. The old issuer leaves the copy only once the registry's certificate verifies against the new
 * issuer and its pods serve it: a node that boots trusting only the new issuer is never served the old one.
 */
export async function advanceRollover(cluster: ClusterRef, p: RolloverPass): Promise<string> {
  const since = p.rollover.since.toISOString();
  if (p.oldTrust.length) {
    return `trust rollover since ${since}: Machine(s) ${someNames(p.oldTrust)} booted before it and trust only the previous issuer, so the registry keeps its certificate from that issuer until they are replaced (an upgrade replaces them); `;
  }
  if (p.issuedNow) return `trust rollover since ${since}: every Machine trusts the new issuer, so the registry now gets its certificate; the previous issuer leaves ${clusterCaSecretName(cluster.name)} once the registry's pods serve it; `;
  let leaf;
  try {
    leaf = decodeCertificate(p.tlsCrt, 'registry-tls');
  } catch {
    leaf = undefined;
  }
  if (!leaf || !(await signedBy(leaf, p.signer.certificate))) return `trust rollover since ${since}: the registry's certificate is not from the new issuer yet; ${clusterCaSecretName(cluster.name)} keeps the previous issuer; `;
  const waiting = await servedBy(p.workload, p.tlsCrt);
  if (waiting) return `trust rollover since ${since}: ${waiting}; ${clusterCaSecretName(cluster.name)} keeps the previous issuer until they serve the certificate from the new one; `;
  await p.management.ensureSecret({ name: clusterCaSecretName(cluster.name), namespace: cluster.namespace, ...clusterOwned(cluster, p.clusterApiVersion), data: { 'ca.crt': p.signer.certPem } });
  await p.management.deleteObject({ apiVersion: 'v1', kind: 'Secret', namespace: p.providerNamespace, name: await rolloverRecordSecretName(cluster.namespace, cluster.name) });
  return `trust rollover complete: ${clusterCaSecretName(cluster.name)} trusts only the new issuer; `;
}
