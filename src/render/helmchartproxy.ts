// The one HelmChartProxy per Cluster that makes CAAPH install the registry chart from our own OCI
// endpoint. Deterministic (CAAPH compares values as strings on every reconcile) and secret-free.
import { CHART, chartManifests, helmValuesTemplate } from './chart.ts';
import { REGISTRY } from './metadata.ts';

export interface ExtensionEndpoint {
  /** The extension's Service, reachable from CAAPH: oci://<name>.<namespace>.svc:<port>/charts. */
  service: { name: string; namespace: string; port: number };
  /** Secret (key ca.crt) that signs the extension's serving certificate. */
  caSecret: { name: string; namespace: string };
}

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
  endpoint: ExtensionEndpoint;
  chartVersion: string;
  workload: readonly Record<string, unknown>[];
}): Record<string, unknown> {
  const { cluster, endpoint } = input;
  return {
    apiVersion: 'addons.cluster.x-k8s.io/v1alpha1',
    kind: 'HelmChartProxy',
    metadata: {
      name: helmChartProxyName(cluster.name),
      namespace: cluster.namespace,
      labels: { 'cluster.x-k8s.io/cluster-name': cluster.name, ...REGISTRY.labels },
      ...(cluster.uid ? { ownerReferences: [{ apiVersion: cluster.apiVersion, kind: 'Cluster', name: cluster.name, uid: cluster.uid }] } : {}),
    },
    spec: {
      // The topology controller puts this label on every ClusterClass-based Cluster.
      clusterSelector: { matchLabels: { 'cluster.x-k8s.io/cluster-name': cluster.name } },
      repoURL: `oci://${endpoint.service.name}.${endpoint.service.namespace}.svc:${endpoint.service.port}/charts`,
      chartName: CHART.name,
      version: input.chartVersion,
      releaseName: REGISTRY.name,
      namespace: REGISTRY.namespace,
      reconcileStrategy: 'Continuous',
      options: { wait: false, timeout: '10m0s', install: { createNamespace: true }, upgrade: { maxHistory: 5 } },
      tlsConfig: { caSecret: { name: endpoint.caSecret.name, namespace: endpoint.caSecret.namespace } },
      valuesTemplate: helmValuesTemplate(chartManifests(input.workload)),
    },
  };
}
