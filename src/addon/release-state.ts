// What CAAPH says of the registry's Helm release. Applying the HelmChartProxy is not the registry being
// deployed: CAAPH may fail to install or upgrade the release (an immutable StatefulSet field changed, a
// quota, an admission webhook), and it records that on the HelmReleaseProxy it made for the Cluster.
// Such a failure is reported on the Cluster like any other (annotation, Event, metric), not hidden
// behind "applied".
import { KubeError, type KubeClient } from '../kube/client.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { oneLine } from '../lib/text.ts';

const HRP = { apiVersion: 'addons.cluster.x-k8s.io/v1alpha1', kind: 'HelmReleaseProxy' } as const;
/** CAAPH's label naming the HelmChartProxy a HelmReleaseProxy belongs to. */
const PROXY_LABEL = 'helmreleaseproxy.addons.cluster.x-k8s.io/helmchartproxy-name';
/** CAAPH's condition and the reason it gives when `helm install`/`upgrade` failed. */
export const READY_CONDITION = 'HelmReleaseReady';
const FAILED_REASON = 'HelmInstallOrUpgradeFailed';

export interface Condition { type?: unknown; status?: unknown; reason?: unknown; message?: unknown }

/** The HelmReleaseProxies CAAPH made for a HelmChartProxy (one per Cluster it selects). */
export const listReleases = (management: KubeClient, namespace: string, proxyName: string) =>
  management.listObjects({ ...HRP, namespace }, `${PROXY_LABEL}=${proxyName}`);

/**
 * The failure CAAPH reports for this Cluster's release, in words for the operator; undefined when it
 * reports none. A failure stands until CAAPH reports again, also while it has not yet tried a newer
 * spec: a pass that changes the proxy (a renewed certificate rolls the pods) has not fixed the release,
 * and calling it Deployed until CAAPH fails again would flip the Cluster's mark, and its Events, back
 * and forth. Pure.
 */
export function releaseFailure(releases: Record<string, unknown>[], cluster: ClusterRef): string | undefined {
  for (const r of releases) {
    const spec = (r.spec ?? {}) as { clusterRef?: { name?: unknown } };
    if (spec.clusterRef?.name !== cluster.name) continue;
    const meta = (r.metadata ?? {}) as { name?: unknown };
    const status = (r.status ?? {}) as { conditions?: Condition[] };
    const ready = (status.conditions ?? []).find((c) => c?.type === READY_CONDITION);
    if (ready?.status !== 'False' || ready.reason !== FAILED_REASON) continue;
    const said = oneLine(String(ready.message ?? ''), 400);
    // No revision number: CAAPH counts up on each retry, and the same failure must give the same words.
    return `CAAPH could not install or upgrade the registry's Helm release (HelmReleaseProxy ${cluster.namespace}/${String(meta.name)}): ${said}. ` +
      'Fix what it names in the workload cluster (an admission policy, a quota); CAAPH retries on its own, and this mark clears at the next pass after it succeeds';
  }
  return undefined;
}

/**
 * Reads the Cluster's HelmReleaseProxies (a list by CAAPH's label) and returns releaseFailure's verdict.
 * A list the API server does not answer (a CRD still initializing answers 429; CAAPH not installed,
 * 404) is no verdict: only CAAPH's own report of a failure turns the Cluster's mark, so the mark never
 * flips on a transient error.
 */
export async function checkRelease(cluster: ClusterRef, management: KubeClient, proxyName: string): Promise<string | undefined> {
  try {
    return releaseFailure(await listReleases(management, cluster.namespace, proxyName), cluster);
  } catch (err) {
    if (err instanceof KubeError) return undefined;
    throw err;
  }
}
