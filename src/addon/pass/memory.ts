// What a replica remembers of each Cluster's last deploy pass, so that a steady pass leaves out the
// workload reads whose answer cannot have changed since:
//   - the StatefulSet, read to see which storage the registry runs with: needed only when the wanted
//     storage differs from what the last pass found running (its volume templates are immutable);
//   - the Node list, read to count the nodes that report the mirror: needed only when the Cluster's
//     machine counts changed (a node joined, left or was replaced) or not every node had reported.
// The Secrets are still read each pass (one list): they are what a workload admin can break, and a
// pass puts them back. Held in memory and bounded: a restart, or a Cluster moving to another replica,
// begins with a pass that reads everything.
import type { ClusterRef } from '../../runtime-sdk/types.ts';
import type { RegistryConfig } from '../../render/config.ts';

export interface Remembered {
  /** The Cluster's machine counts when every node had last reported the mirror enabled, and the node-mirror mark that count wrote. */
  nodesComplete?: { counts: string; mark: string };
  /** The storage last wanted, when the registry was found running with exactly that. */
  storageRunning?: string;
}

export interface PassMemory {
  recall(cluster: ClusterRef): Remembered;
  keep(cluster: ClusterRef, remembered: Remembered): void;
}

const uidOf = (cluster: ClusterRef) => String((cluster.raw.metadata as { uid?: unknown } | undefined)?.uid ?? '');

/** A Cluster recreated under the same name (another uid) is a new Cluster: nothing is recalled for it. */
export function passMemory(max = 20_000): PassMemory {
  const held = new Map<string, { uid: string; remembered: Remembered }>();
  const keyOf = (c: ClusterRef) => `${c.namespace}/${c.name}`;
  return {
    recall(cluster) {
      const entry = held.get(keyOf(cluster));
      return entry && entry.uid === uidOf(cluster) ? entry.remembered : {};
    },
    keep(cluster, remembered) {
      const key = keyOf(cluster);
      held.delete(key);
      held.set(key, { uid: uidOf(cluster), remembered });
      // Map order is insertion order: the first entry is the one kept longest ago.
      while (held.size > max) held.delete(held.keys().next().value!);
    },
  };
}

/** The storage as one comparable string. */
export const storageKey = (storage: RegistryConfig['storage']) => JSON.stringify([storage.size, storage.storageClassName ?? '']);

/**
 * The Cluster's machine counts (v1beta2 `status.controlPlane`/`status.workers`, or the same under
 * v1beta1's `status.v1beta2`) and its version: they change when a node joins, leaves or is replaced.
 * undefined when the Cluster carries no counts (an older Cluster API): then the nodes are counted every pass.
 */
export function machineCounts(raw: Record<string, unknown>): string | undefined {
  const status = (raw.status ?? {}) as Record<string, any>;
  const counts = [status.controlPlane, status.workers, status.v1beta2?.controlPlane, status.v1beta2?.workers];
  if (counts.every((c) => c === undefined || c === null)) return undefined;
  return JSON.stringify([counts, (raw.spec as { topology?: { version?: unknown } } | undefined)?.topology?.version]);
}

/** Which workload reads a pass needs, given what the last successful pass on this replica left. */
export interface PassReads {
  /** Read the StatefulSet (the running storage). */
  storage: boolean;
  /** List the Nodes (the mirror report). */
  nodes: boolean;
  /** The machine counts now (kept when the nodes all reported). */
  counts?: string;
}

/**
 * `nodeMirrorMark`: the node-mirror mark the Cluster carries now. The Nodes are counted again when it is
 * not the one the last count wrote (CAPI's merge patch after AfterControlPlaneInitialized can drop marks
 * written during the call; anyone may edit it).
 */
export function readsNeeded(remembered: Remembered, raw: Record<string, unknown>, wanted: RegistryConfig['storage'], nodeMirrorMark: string | undefined): PassReads {
  const counts = machineCounts(raw);
  const complete = remembered.nodesComplete;
  return {
    storage: remembered.storageRunning !== storageKey(wanted),
    nodes: !counts || complete?.counts !== counts || complete.mark !== nodeMirrorMark,
    ...(counts ? { counts } : {}),
  };
}

/**
 * What the next pass may take as read once this one succeeded: the storage when it runs as wanted (not
 * refused, nothing done to it this pass), the machine counts when every node counted reported the mirror.
 */
export function rememberAfter(before: Remembered, reads: PassReads, wanted: RegistryConfig['storage'], storage: { refused?: string; done?: string }, nodes: { allMirrored?: boolean; mark?: string }): Remembered {
  const counted = reads.counts && nodes.allMirrored && nodes.mark ? { counts: reads.counts, mark: nodes.mark } : undefined;
  const nodesComplete = reads.nodes ? counted : before.nodesComplete;
  return { ...(storage.refused || storage.done ? {} : { storageRunning: storageKey(wanted) }), ...(nodesComplete ? { nodesComplete } : {}) };
}
