// What the addon keeps on an opted-in Cluster: the label that makes its HelmChartProxy select it and
// its annotations (registry status, certificate expiry, the upgrade that last issued the certificate,
// the current credentials, what the nodes reported of the mirror, and during deletion when the release
// of its volumes began).
// They live on the Cluster, not in memory, so a restarted or moved extension (and the metrics) read
// them at once. Written by server-side apply with our field manager: every write carries the whole
// set, because a mark left out of an apply is removed.
import { holds, type KubeClient } from '../kube/client.ts';
import {
  CERT_NOT_AFTER_ANNOTATION,
  CERT_UPGRADE_ANNOTATION,
  CLUSTER_SELECTOR_LABEL,
  CREDENTIALS_ANNOTATION,
  helmChartProxyName,
  NODE_MIRROR_SUMMARY_ANNOTATION,
  REGISTRY_RETRYING,
  REGISTRY_STATUS_ANNOTATION,
  SOURCES_ANNOTATION,
  SOURCES_COUNTED_ANNOTATION,
  SOURCES_FAILING_ANNOTATION,
  GC_AT_ANNOTATION,
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
  /** The current registry users, `node-2,push-2`. */
  credentials?: string;
  /** What the nodes reported of the mirror, `enabled=5,not-enabled=1,unreported=0`. */
  nodeMirror?: string;
  /** Per source registry: the last pass (what was copied, when, what failed); ` | ` between sources. */
  sources?: string;
  /** The newest source pass already counted in the metrics and Events (unix seconds). */
  sourcesCountedUntil?: string;
  /** The sources failing now, `a,b` (`status` reads this, not the words of `sources`). */
  sourcesFailing?: string;
  /** RFC 3339: when garbage collection was last due. */
  gcAt?: string;
}

/** The marks and the annotations that carry them. */
const MARK_ANNOTATIONS: Record<keyof ClusterMarks, string> = {
  status: REGISTRY_STATUS_ANNOTATION,
  notAfter: CERT_NOT_AFTER_ANNOTATION,
  certUpgrade: CERT_UPGRADE_ANNOTATION,
  volumesReleaseStarted: VOLUMES_RELEASE_ANNOTATION,
  credentials: CREDENTIALS_ANNOTATION,
  nodeMirror: NODE_MIRROR_SUMMARY_ANNOTATION,
  sources: SOURCES_ANNOTATION,
  sourcesCountedUntil: SOURCES_COUNTED_ANNOTATION,
  sourcesFailing: SOURCES_FAILING_ANNOTATION,
  gcAt: GC_AT_ANNOTATION,
};

const MAX_STATUS = 1024;

/** The marks as the Cluster carries them now (from the API server's object). */
export function currentMarks(cluster: ClusterRef): Partial<ClusterMarks> {
  const annotations = ((cluster.raw.metadata ?? {}) as { annotations?: Record<string, unknown> }).annotations ?? {};
  const text = (key: string) => (typeof annotations[key] === 'string' ? (annotations[key] as string) : undefined);
  return Object.fromEntries(Object.entries(MARK_ANNOTATIONS).flatMap(([mark, key]) => (text(key) === undefined ? [] : [[mark, text(key)]])));
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
export async function markCluster(cluster: ClusterRef, management: Pick<KubeClient, 'applyObject'>, clusterApiVersion: string, change: Partial<ClusterMarks>): Promise<void> {
  const marks = { ...currentMarks(cluster), ...change };
  const annotations: Record<string, string> = Object.fromEntries(Object.entries(MARK_ANNOTATIONS).flatMap(([mark, key]) => {
    const value = marks[mark as keyof ClusterMarks];
    return value ? [[key, value]] : [];
  }));
  const metadata = { name: cluster.name, namespace: cluster.namespace, labels: { [CLUSTER_SELECTOR_LABEL]: helmChartProxyName(cluster.name) }, annotations };
  // The Cluster was read at the start of this pass: when it holds every mark already, nothing is written.
  if (holds(cluster.raw.metadata, metadata)) return;
  await management.applyObject({ apiVersion: clusterApiVersionOf(cluster, clusterApiVersion), kind: 'Cluster', metadata });
  const stored = (cluster.raw.metadata ?? {}) as { annotations?: Record<string, string>; labels?: Record<string, string> };
  cluster.raw.metadata = { ...stored, labels: { ...stored.labels, ...metadata.labels }, annotations: { ...stored.annotations, ...annotations } };
}
