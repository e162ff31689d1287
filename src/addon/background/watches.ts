// What the background loop watches in the management cluster, and how narrowly: every Cluster (a
// Cluster opts in through its spec, which no selector can see) held without managedFields and with
// only the status the loop reads; our own Secrets and HelmChartProxies by our label; the root CA by
// name; CAPI's kubeconfig Secrets by CAPI's label and type (only `<cluster>-kubeconfig` held); CAAPH's
// HelmReleaseProxies by its label (only those of our proxies held). Machines are not watched: only a
// trust rollover reads them, rarely.
import { objectCache, withoutManagedFields, type CacheEvent, type ObjectCache, type Stored } from '../../kube/cache.ts';
import { cachedClient, type CacheScope } from '../../kube/cached-client.ts';
import type { KubeClient, ObjectRef } from '../../kube/client.ts';
import { ROOT_CA_SECRET } from '../../pki/root-ca.ts';
import { REGISTRY } from '../../render/metadata.ts';

const PART_OF = `app.kubernetes.io/part-of=${REGISTRY.labels['app.kubernetes.io/part-of']}`;
const HCP_API = 'addons.cluster.x-k8s.io/v1alpha1';
const PROXY_LABEL = 'helmreleaseproxy.addons.cluster.x-k8s.io/helmchartproxy-name';
const CLUSTER_NAME_LABEL = 'cluster.x-k8s.io/cluster-name';
/** The names our Secrets beside a Cluster end with (metadata.ts). */
const CLUSTER_SECRET_SUFFIXES = ['-registry-addon-ca', '-registry-addon-node', '-registry-addon-push', '-registry-addon-node-script'];
/** Our Secrets in the provider namespace begin with these (issuers, rollover records). */
const PROVIDER_SECRET_PREFIXES = ['registry-addon-issuer-', 'registry-addon-rollover-'];

/**
 * A Cluster as the loop needs it: no managedFields, and of its status only what says the control plane
 * is initialized and the machine counts (pass/memory.ts: when to count the nodes again).
 */
export function clusterProjection(object: Stored): Stored {
  const trimmed = withoutManagedFields(object);
  const status = (object.status ?? {}) as Record<string, any>;
  const initialized = (c: any) => c?.type === 'ControlPlaneInitialized';
  const counts = (s: Record<string, any>) => ({ ...(s.controlPlane ? { controlPlane: s.controlPlane } : {}), ...(s.workers ? { workers: s.workers } : {}) });
  const v1beta2 = {
    ...(Array.isArray(status.v1beta2?.conditions) ? { conditions: status.v1beta2.conditions.filter(initialized) } : {}),
    ...counts(status.v1beta2 ?? {}),
  };
  return {
    ...trimmed,
    status: {
      ...(status.initialization ? { initialization: status.initialization } : {}),
      ...(status.controlPlaneReady !== undefined ? { controlPlaneReady: status.controlPlaneReady } : {}),
      ...(Array.isArray(status.conditions) ? { conditions: status.conditions.filter(initialized) } : {}),
      ...counts(status),
      ...(Object.keys(v1beta2).length ? { v1beta2 } : {}),
    },
  };
}

export interface ManagementWatches {
  /** The management client whose reads come from the caches. */
  client: KubeClient & { reads: { cached: number; direct: number } };
  /** The same connection without the caches (member Leases: their own cadence, counted apart). */
  direct: KubeClient;
  clusters: ObjectCache;
  /** Resolves when the Clusters are listed (the others may follow: until then their reads go to the API server). */
  whenSynced(): Promise<void>;
  /** Every change to an object of ours, by the Cluster it belongs to (namespace/name). */
  onOwnedChange(listener: (cluster: { namespace: string; name: string }) => void): void;
  counts(): Record<string, { lists: number; watches: number; events: number; held: number }>;
  stop(): void;
}

export function managementWatches(direct: KubeClient, opts: { providerNamespace: string; clusterApiVersion: string; onError: (message: string) => void }): ManagementWatches {
  const make = (spec: Parameters<typeof objectCache>[1]) => objectCache(direct, spec, { onError: opts.onError });
  const clusters = make({ ref: { apiVersion: opts.clusterApiVersion, kind: 'Cluster' }, selectors: {}, keep: clusterProjection });
  const ours = make({ ref: { apiVersion: 'v1', kind: 'Secret' }, selectors: { labelSelector: PART_OF } });
  const rootCa = make({ ref: { apiVersion: 'v1', kind: 'Secret', namespace: opts.providerNamespace }, selectors: { fieldSelector: `metadata.name=${ROOT_CA_SECRET}` } });
  const kubeconfigs = make({
    ref: { apiVersion: 'v1', kind: 'Secret' }, selectors: { labelSelector: CLUSTER_NAME_LABEL, fieldSelector: 'type=cluster.x-k8s.io/secret' },
    keep: (o) => (String((o.metadata as { name?: unknown })?.name).endsWith('-kubeconfig') ? withoutManagedFields(o) : undefined),
  });
  const proxies = make({ ref: { apiVersion: HCP_API, kind: 'HelmChartProxy' }, selectors: { labelSelector: PART_OF } });
  const releases = make({
    ref: { apiVersion: HCP_API, kind: 'HelmReleaseProxy' }, selectors: { labelSelector: PROXY_LABEL },
    keep: (o) => (String((o.metadata as { labels?: Record<string, string> })?.labels?.[PROXY_LABEL]).endsWith('-registry') ? withoutManagedFields(o) : undefined),
  });
  const isSecret = (ref: ObjectRef) => ref.apiVersion === 'v1' && ref.kind === 'Secret';
  const scopes: CacheScope[] = [
    { cache: clusters, authoritative: false, covers: (ref) => ref.kind === 'Cluster' && ref.apiVersion === opts.clusterApiVersion, lists: (ref) => ref.kind === 'Cluster' && ref.apiVersion === opts.clusterApiVersion },
    {
      cache: ours, authoritative: true,
      covers: (ref) => isSecret(ref) && (CLUSTER_SECRET_SUFFIXES.some((s) => ref.name.endsWith(s)) || (ref.namespace === opts.providerNamespace && PROVIDER_SECRET_PREFIXES.some((p) => ref.name.startsWith(p)))),
    },
    { cache: rootCa, authoritative: true, covers: (ref) => isSecret(ref) && ref.namespace === opts.providerNamespace && ref.name === ROOT_CA_SECRET },
    // Not authoritative: a kubeconfig Secret without CAPI's label or type is still read from the API server.
    { cache: kubeconfigs, authoritative: false, covers: (ref) => isSecret(ref) && ref.name.endsWith('-kubeconfig') },
    { cache: proxies, authoritative: true, covers: (ref) => ref.kind === 'HelmChartProxy' && ref.apiVersion === HCP_API },
    { cache: releases, authoritative: true, covers: () => false, lists: (ref, selector) => ref.kind === 'HelmReleaseProxy' && selector.startsWith(`${PROXY_LABEL}=`) && selector.endsWith('-registry') },
  ];
  const all = { clusters, ours, rootCa, kubeconfigs, proxies, releases };
  const ownedListeners: Parameters<ManagementWatches['onOwnedChange']>[0][] = [];
  // Whose it is: beside the Cluster, its namespace and CAPI's label; in the provider namespace, our namespace label.
  const tellOwner = (e: CacheEvent) => {
    const labels = ((e.object.metadata ?? {}) as { labels?: Record<string, string> }).labels ?? {};
    const name = labels[CLUSTER_NAME_LABEL];
    if (name) for (const l of ownedListeners) l({ namespace: labels['capi-registry-addon.io/cluster-namespace'] ?? e.namespace, name });
  };
  for (const cache of [ours, proxies, kubeconfigs]) cache.onChange(tellOwner);
  return {
    client: cachedClient(direct, scopes),
    direct,
    clusters,
    whenSynced: () => clusters.whenSynced(),
    onOwnedChange: (l) => void ownedListeners.push(l),
    counts: () => Object.fromEntries(Object.entries(all).map(([k, c]) => [k, c.counts()])),
    stop: () => Object.values(all).forEach((c) => c.stop()),
  };
}
