// What the addon keeps on an opted-in Cluster: the label that makes its HelmChartProxy select it and
// its annotations (registry status, certificate expiry, the upgrade that last issued the certificate,
// and during deletion when the release of its volumes began).
// They live on the Cluster, not in memory, so a restarted or moved extension (and the metrics) read
// them at once. Written by server-side apply with our field manager: every write carries the whole
// set, because a mark left out of an apply is removed.
import { holds, type SecretClient } from '../kube/client.ts';
import {
  CERT_NOT_AFTER_ANNOTATION,
  CERT_UPGRADE_ANNOTATION,
  CLUSTER_SELECTOR_LABEL,
  helmChartProxyName,
  REGISTRY_RETRYING,
  REGISTRY_STATUS_ANNOTATION,
  VOLUMES_RELEASE_ANNOTATION,
} from '../render/helmchartproxy.ts';
import { redact } from '../observe/log.ts';
import { clusterApiVersionOf, type ClusterRef } from '../runtime-sdk/types.ts';

export interface ClusterMarks {
  status: string;
  /** RFC 3339 expiry of the served certificate. */
  notAfter?: string;
  /** The version of the last upgrade that issued the certificate. */
  certUpgrade?: string;
  /** RFC 3339: when BeforeClusterDelete began releasing the registry's volumes. */
  volumesReleaseStarted?: string;
}

const MAX_STATUS = 1024;

/** The marks as the Cluster carries them now (from the API server's object). */
export function currentMarks(cluster: ClusterRef): Partial<ClusterMarks> {
  const annotations = ((cluster.raw.metadata ?? {}) as { annotations?: Record<string, unknown> }).annotations ?? {};
  const text = (key: string) => (typeof annotations[key] === 'string' ? (annotations[key] as string) : undefined);
  const marks = { status: text(REGISTRY_STATUS_ANNOTATION), notAfter: text(CERT_NOT_AFTER_ANNOTATION), certUpgrade: text(CERT_UPGRADE_ANNOTATION), volumesReleaseStarted: text(VOLUMES_RELEASE_ANNOTATION) };
  return Object.fromEntries(Object.entries(marks).filter(([, v]) => v !== undefined));
}

/**
 * The status for a failed attempt: the failure's own words without the Cluster's name (the annotation
 * is on it), redacted and bounded. The same failure gives the same text: no time, no counter.
 */
export function retryingStatus(cluster: ClusterRef, message: string): string {
  const prefix = `Cluster ${cluster.namespace}/${cluster.name}: `;
  const reason = redact(message.startsWith(prefix) ? message.slice(prefix.length) : message);
  return `${REGISTRY_RETRYING}${reason}`.slice(0, MAX_STATUS);
}


/**
 * Applies the label and every mark: the ones in `change`, the others as the Cluster carries them now.
 * `cluster.raw` is brought up to date with what was written, so a later mark in the same attempt
 * carries it too (an apply without it would remove it).
 */
export async function markCluster(cluster: ClusterRef, management: Pick<SecretClient, 'applyObject'>, clusterApiVersion: string, change: Partial<ClusterMarks>): Promise<void> {
  const marks = { ...currentMarks(cluster), ...change };
  const annotations: Record<string, string> = {};
  if (marks.status) annotations[REGISTRY_STATUS_ANNOTATION] = marks.status;
  if (marks.notAfter) annotations[CERT_NOT_AFTER_ANNOTATION] = marks.notAfter;
  if (marks.certUpgrade) annotations[CERT_UPGRADE_ANNOTATION] = marks.certUpgrade;
  if (marks.volumesReleaseStarted) annotations[VOLUMES_RELEASE_ANNOTATION] = marks.volumesReleaseStarted;
  const metadata = { name: cluster.name, namespace: cluster.namespace, labels: { [CLUSTER_SELECTOR_LABEL]: helmChartProxyName(cluster.name) }, annotations };
  // The Cluster was read at the start of this pass: when it holds every mark already, nothing is written.
  if (holds(cluster.raw.metadata, metadata)) return;
  await management.applyObject({ apiVersion: clusterApiVersionOf(cluster, clusterApiVersion), kind: 'Cluster', metadata });
  const stored = (cluster.raw.metadata ?? {}) as { annotations?: Record<string, string>; labels?: Record<string, string> };
  cluster.raw.metadata = { ...stored, labels: { ...stored.labels, ...metadata.labels }, annotations: { ...stored.annotations, ...annotations } };
}
