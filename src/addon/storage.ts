// Storage changes on a running registry. A StatefulSet's volumeClaimTemplates are immutable: once
// `storage` changes, every Helm upgrade of the release fails, and with it every later change. So:
//   - a larger size expands the existing claims (when their StorageClass allows expansion), then the
//     StatefulSet is deleted with its pods and claims orphaned, so CAAPH's next upgrade creates it again
//     with the new template and it adopts them: no pod restarts for it, no data moves;
//   - a smaller size or another StorageClass is refused: the running values are rendered instead (so
//     every other change still reaches the cluster) and the refusal is reported on the Cluster.
// The workload cluster's StatefulSet is the truth about what runs, whatever schema the request came under.
import type { KubeClient } from '../kube/client.ts';
import { quantityValue } from '../lib/quantity.ts';
import type { RegistryConfig } from '../render/config.ts';
import { REGISTRY, REGISTRY_SELECTOR, STATEFULSET_REF } from '../render/metadata.ts';

type Storage = RegistryConfig['storage'];
type ClaimSpec = { storageClassName?: string; resources?: { requests?: { storage?: string } } };
type Claim = { metadata?: { name?: string }; spec?: ClaimSpec };

export interface StorageVerdict {
  /** What to render: the wanted storage, or the running one when the change is refused. */
  storage: Storage;
  /** Why the wanted change is not made, and what to do. */
  refused?: string;
  /** What was done to make it (claims expanded, StatefulSet replaced). */
  done?: string;
}


export async function reconcileStorage(workload: KubeClient, wanted: Storage): Promise<StorageVerdict> {
  const stored = (await workload.getObject(STATEFULSET_REF)) as { spec?: { volumeClaimTemplates?: Claim[] } } | undefined;
  const template = stored?.spec?.volumeClaimTemplates?.[0]?.spec;
  // Nothing runs yet (or it was replaced and CAAPH has not created it again): the wanted storage goes as is.
  if (!template) return { storage: wanted };
  const runningSize = template.resources?.requests?.storage ?? wanted.size;
  const running: Storage = { size: runningSize, ...(template.storageClassName ? { storageClassName: template.storageClassName } : {}) };
  // Listed only when needed: the steady state costs one read.
  let listed: Claim[] | undefined;
  const claims = async () => (listed ??= (await workload.listObjects({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: REGISTRY.namespace }, REGISTRY_SELECTOR)) as Claim[]);
  // No class named means the cluster's default, which the claims show.
  const actual = wanted.storageClassName === running.storageClassName ? undefined : (await claims()).find((c) => c.spec?.storageClassName)?.spec?.storageClassName;
  const classOf = (name: string | undefined) => name ?? actual ?? '(the default StorageClass)';
  const refuse = (why: string): StorageVerdict => ({ storage: running, refused: why });
  if (classOf(wanted.storageClassName) !== classOf(running.storageClassName)) {
    return refuse(`storage.storageClassName cannot change on a running registry (${classOf(running.storageClassName)} → ${classOf(wanted.storageClassName)}): its data is on the existing volumes; set it back${running.storageClassName ? ` to ${running.storageClassName}` : ' (remove it)'}`);
  }
  const have = quantityValue(runningSize) ?? 0;
  const want = quantityValue(wanted.size) ?? 0;
  if (want < have) return refuse(`storage.size ${wanted.size} is smaller than the registry's volumes (${runningSize}): volumes cannot shrink; set storage.size back to ${runningSize} or more`);
  if (want === have) return { storage: running };

  const small = (await claims()).filter((c) => (quantityValue(c.spec?.resources?.requests?.storage ?? '') ?? 0) < want);
  for (const className of new Set(small.map((c) => c.spec?.storageClassName ?? ''))) {
    const storageClass = className ? await workload.getObject({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', name: className }) : undefined;
    if (storageClass?.allowVolumeExpansion !== true) {
      return refuse(`StorageClass ${className || '(none)'} does not allow volume expansion (allowVolumeExpansion is not true): the registry's volumes stay at ${runningSize}; set storage.size back to ${runningSize}, or allow expansion on the StorageClass`);
    }
  }
  for (const claim of small) {
    const grown = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claim.metadata!.name!, namespace: REGISTRY.namespace }, spec: { resources: { requests: { storage: wanted.size } } } };
    await workload.applyObject(grown as Parameters<KubeClient['applyObject']>[0]);
  }
  await workload.deleteObject(STATEFULSET_REF, { propagationPolicy: 'Orphan' });
  return { storage: wanted, done: `registry volumes expanded to ${wanted.size} (${small.length} claims); StatefulSet replaced, its pods and claims kept` };
}
