// BeforeClusterDelete's part in the workload cluster: the registry's disks. Its claims must go while the
// workload cluster still runs, or the cloud volumes behind them (2 x 100Gi by default) stay, billed, after
// the cluster is torn down. The StatefulSet is deleted (its pods release the claims), then the claims;
// the storage provisioner deletes each volume whose reclaim policy is Delete. Deletion of the Cluster is
// held back (retryAfterSeconds) while that can still make progress, for a bounded time that holds across
// retries, restarts and replicas (it starts from an annotation on the Cluster). Volumes with a Retain
// policy are the user's choice: named in the answer, not waited for.
import { KubeError, type KubeClient } from '../kube/client.ts';
import { REGISTRY, REGISTRY_SELECTOR, STATEFULSET_REF } from '../render/metadata.ts';
import { kubernetesTime, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import { currentMarks, markCluster } from './cluster-marks.ts';
import type { AddonDeps } from './deploy.ts';
import { kubeconfigSecret, workloadClientFor } from './workload-secrets.ts';
import { whenAborted } from '../lib/abort.ts';

/** How long deletion may wait for the volumes, and for an unreachable workload API server (`serve --volume-release-timeout`). */
export const VOLUME_RELEASE = { timeoutMs: 600_000, unreachableMs: 120_000, retryAfterSeconds: 10 } as const;

type Obj = { metadata?: { name?: string; deletionTimestamp?: string }; spec?: { claimRef?: { namespace?: string }; persistentVolumeReclaimPolicy?: string } };

/** Deletes the StatefulSet and the registry's claims; says what is still there (waited for) and what stays by policy. */
async function deleteRegistryVolumes(workload: KubeClient): Promise<{ remaining: string[]; retained: string[] }> {
  await workload.deleteObject(STATEFULSET_REF);
  const claims = (await workload.listObjects({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: REGISTRY.namespace }, REGISTRY_SELECTOR)) as Obj[];
  for (const claim of claims) {
    if (!claim.metadata?.deletionTimestamp) await workload.deleteObject({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: REGISTRY.namespace, name: claim.metadata!.name! });
  }
  const volumes = ((await workload.listObjects({ apiVersion: 'v1', kind: 'PersistentVolume' }, '')) as Obj[]).filter((pv) => pv.spec?.claimRef?.namespace === REGISTRY.namespace);
  const name = (o: Obj) => o.metadata?.name ?? '?';
  return {
    remaining: [...claims.map((c) => `PersistentVolumeClaim ${REGISTRY.namespace}/${name(c)}`), ...volumes.filter((v) => v.spec?.persistentVolumeReclaimPolicy === 'Delete').map((v) => `PersistentVolume ${name(v)}`)],
    retained: volumes.filter((v) => v.spec?.persistentVolumeReclaimPolicy !== 'Delete').map(name),
  };
}

/** The hook's answer: done, wait (retryAfterSeconds), or give up after the bound with what to check by hand. */
export async function releaseRegistryVolumes(cluster: ClusterRef, deps: AddonDeps, signal: AbortSignal): Promise<HookResult> {
  // No kubeconfig Secret: the control plane never came up, so the registry never had a disk.
  if (!(await deps.management.readSecret(cluster.namespace, kubeconfigSecret(cluster.name)))) return success();
  const now = deps.now();
  const recorded = Date.parse(currentMarks(cluster).volumesReleaseStarted ?? '');
  // Whole seconds, as the annotation keeps it.
  const started = Number.isNaN(recorded) ? Math.floor(now.getTime() / 1000) * 1000 : recorded;
  if (Number.isNaN(recorded)) await markCluster(cluster, deps.management, deps.clusterApiVersion, { volumesReleaseStarted: kubernetesTime(new Date(started)) });
  const timeoutMs = deps.volumeReleaseTimeoutMs ?? VOLUME_RELEASE.timeoutMs;
  // Messages name the deadline, not the time waited: the same state gives the same words on every retry.
  const until = (ms: number) => kubernetesTime(new Date(started + ms));
  const wait = (message: string): HookResult => ({ ...success(message), retryAfterSeconds: VOLUME_RELEASE.retryAfterSeconds });
  const id = `Cluster ${cluster.namespace}/${cluster.name}`;

  let outcome: Awaited<ReturnType<typeof deleteRegistryVolumes>> | 'aborted';
  let reason: string | undefined;
  try {
    outcome = await Promise.race([workloadClientFor(cluster, deps).then(deleteRegistryVolumes), whenAborted(signal).then(() => 'aborted' as const)]);
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    outcome = 'aborted';
    reason = err.message;
  }
  if (outcome === 'aborted') {
    const why = `the workload API server did not answer (${reason ?? 'no answer within the hook\'s time'})`;
    const unreachableMs = Math.min(VOLUME_RELEASE.unreachableMs, timeoutMs);
    if (now.getTime() - started < unreachableMs) {
      return wait(`${id}: cannot delete the registry's volumes yet: ${why}; deletion waits up to ${unreachableMs / 1000}s, until ${until(unreachableMs)}`);
    }
    return success(`${id}: gave up deleting the registry's volumes at ${until(unreachableMs)} (${unreachableMs / 1000}s): ${why}; check the cloud volumes of namespace ${REGISTRY.namespace} (claims data-${REGISTRY.name}-N) and delete them by hand`);
  }
  const retained = outcome.retained.length ? `; kept by their Retain policy: PersistentVolume ${outcome.retained.join(', ')}` : '';
  if (!outcome.remaining.length) return success(`registry volumes released${retained}`);
  if (now.getTime() - started < timeoutMs) {
    return wait(`${id}: waiting for the registry's volumes to be deleted in the workload cluster (${outcome.remaining.join(', ')}); deletion waits up to ${timeoutMs / 1000}s, until ${until(timeoutMs)}${retained}`);
  }
  return success(`${id}: gave up at ${until(timeoutMs)} (${timeoutMs / 1000}s) waiting for ${outcome.remaining.join(', ')} to be deleted (a finalizer, or a provisioner that does not delete?); check those volumes and delete their disks by hand${retained}`);
}
