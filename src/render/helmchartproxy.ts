// The one HelmChartProxy per Cluster that makes CAAPH install the registry chart from our own OCI
// endpoint. Deterministic (CAAPH compares values as strings on every reconcile) and secret-free.
import { CHART, chartManifests, helmValuesTemplate } from './chart.ts';
import { REGISTRY } from './metadata.ts';

/** Where CAAPH pulls the chart: the extension's own OCI endpoint. */
export interface ChartSource {
  /** oci://<extension Service>.<namespace>.svc:<port>/charts (no chart name, no tag). */
  repoUrl: string;
  version: string;
  /** Secret (key ca.crt) that signs the extension's serving certificate. */
  caSecret: { name: string; namespace: string };
}

/** The label the addon puts on an opted-in Cluster so that exactly its HelmChartProxy selects it. */
export const CLUSTER_SELECTOR_LABEL = 'capi-registry-addon.io/helmchartproxy';
/** Annotation on the Cluster: when its registry's server certificate expires (RFC 3339). Kept on the
 * Cluster, not in memory, so the expiry metric survives restarts and `clusterctl move`. */
export const CERT_NOT_AFTER_ANNOTATION = 'capi-registry-addon.io/registry-cert-not-after';
/** Annotation on the Cluster: the Kubernetes version whose BeforeClusterUpgrade last issued the registry's
 * certificate, so a retried hook for the same upgrade does not issue another one. */
export const CERT_UPGRADE_ANNOTATION = 'capi-registry-addon.io/registry-cert-upgrade';
/** Annotation on the Cluster: `Deployed`, or `Retrying: <what is wrong and what to do>` while the background
 * loop keeps trying. Deterministic for the same state, so rewriting it changes nothing. */
export const REGISTRY_STATUS_ANNOTATION = 'capi-registry-addon.io/registry-status';
/** Annotation on the Cluster: the registry users now current, e.g. `node-2,push-2` (after one rotation). */
export const CREDENTIALS_ANNOTATION = 'capi-registry-addon.io/registry-credentials';

/** Annotation on the Cluster: what its nodes reported of the mirror at the last pass, `enabled=5,not-enabled=1,unreported=0`. */
export const NODE_MIRROR_SUMMARY_ANNOTATION = 'capi-registry-addon.io/node-mirror';

/** Annotation on the Cluster: per source registry, what the writer last copied, when, and what failed. */
export const SOURCES_ANNOTATION = 'capi-registry-addon.io/sources';
/** Annotation on the Cluster: the newest source pass (unix seconds) already counted in the metrics and Events. */
export const SOURCES_COUNTED_ANNOTATION = 'capi-registry-addon.io/sources-counted-until';
/** The sources whose last pass failed (or whose Secrets are wrong), by name, comma-separated: what `status` reports as problems. */
export const SOURCES_FAILING_ANNOTATION = 'capi-registry-addon.io/sources-failing';
/** RFC 3339: when the registry's garbage collection was last due (the pods carry it; a change rolls them and collects). */
export const GC_AT_ANNOTATION = 'capi-registry-addon.io/gc-at';

/** Annotation on a Cluster being deleted: when BeforeClusterDelete began releasing the registry's volumes
 * (RFC 3339), so the bounded wait holds across retries, restarts and replicas. */
export const VOLUMES_RELEASE_ANNOTATION = 'capi-registry-addon.io/volumes-release-started';
export const REGISTRY_DEPLOYED = 'Deployed';
export const REGISTRY_RETRYING = 'Retrying: ';

/** A Kubernetes name of at most 63 characters: the cluster name, shortened with a stable suffix when needed. */
export function helmChartProxyName(cluster: string): string {
  const name = `${cluster}-registry`;
  if (name.length <= 63) return name;
  let h = 0x811c9dc5; // FNV-1a: short, stable, no I/O
  for (const c of cluster) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return `${cluster.slice(0, 45).replace(/-+$/, '')}-${h.toString(16).padStart(8, '0')}-registry`;
}

export function helmChartProxy(input: {
  cluster: { name: string; namespace: string; uid?: string; apiVersion: string };
  chart: ChartSource;
  workload: readonly Record<string, unknown>[];
}): Record<string, unknown> {
  const { cluster, chart } = input;
  const name = helmChartProxyName(cluster.name);
  return {
    apiVersion: 'addons.cluster.x-k8s.io/v1alpha1',
    kind: 'HelmChartProxy',
    metadata: {
      name,
      namespace: cluster.namespace,
      labels: { 'cluster.x-k8s.io/cluster-name': cluster.name, ...REGISTRY.labels },
      ...(cluster.uid ? { ownerReferences: [{ apiVersion: cluster.apiVersion, kind: 'Cluster', name: cluster.name, uid: cluster.uid }] } : {}),
    },
    spec: {
      // A label the hooks set on the Cluster: CAPI does not promise one that names it (caaph.md §1.10).
      clusterSelector: { matchLabels: { [CLUSTER_SELECTOR_LABEL]: name } },
      repoURL: chart.repoUrl,
      chartName: CHART.name,
      version: chart.version,
      releaseName: REGISTRY.name,
      namespace: REGISTRY.namespace,
      reconcileStrategy: 'Continuous',
      options: { wait: false, timeout: '10m0s', install: { createNamespace: true }, upgrade: { maxHistory: 5 } },
      tlsConfig: { caSecret: { ...chart.caSecret } },
      valuesTemplate: helmValuesTemplate(chartManifests(input.workload)),
    },
  };
}
