// A hook body is a claim, not the truth: whoever reaches the hook port can send one. Before any lock is
// taken or anything is read for it, the Cluster is read back by namespace/name and its UID compared:
// forged bodies naming a real Cluster must not queue in front of that Cluster's real hooks.
//
// The reads are shared and bounded: bodies naming the same Cluster at the same time share one GET (a
// flood for one name costs one request), at most MAX_READS different Clusters are read at once, at most
// MAX_WAITING more wait their turn, and past that a body is answered at once (CAPI retries a Failure).
import type { Logger } from '../observe/log.ts';
import type { HookName } from '../runtime-sdk/catalog.ts';
import { parseCluster } from '../runtime-sdk/request.ts';
import { failure, retryLater, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import type { AddonDeps } from './deploy.ts';

export const MAX_READS = 16;
export const MAX_WAITING = 512;
/** How soon CAPI asks again when a BeforeClusterDelete could not be checked. */
const BUSY_RETRY_SECONDS = 5;

type Stored = Record<string, unknown> | undefined;

export interface Confirmer {
  /** The Cluster as the API server has it when the body's claim holds; else the answer to give (logged at warn). */
  confirm(hook: HookName, claimed: ClusterRef, deps: AddonDeps): Promise<ClusterRef | HookResult>;
  /** Reads in flight and bodies waiting for one (for tests and metrics). */
  load(): { reading: number; waiting: number };
}

/** One GET per key at a time, at most `limits.reads` keys at once; `read` is undefined when too many wait. */
function sharedReads(limits: { reads: number; waiting: number }) {
  const inFlight = new Map<string, Promise<Stored>>();
  const queue: (() => void)[] = [];
  let running = 0;
  // A finished read hands its slot straight to the longest waiting one, so `running` never exceeds the limit.
  const slot = async () => {
    if (running < limits.reads) running++;
    else await new Promise<void>((resolve) => queue.push(resolve));
  };
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else running--;
  };
  return {
    load: () => ({ reading: running, waiting: queue.length }),
    read(key: string, get: () => Promise<Stored>): Promise<Stored> | undefined {
      const shared = inFlight.get(key);
      if (shared) return shared;
      if (running >= limits.reads && queue.length >= limits.waiting) return undefined;
      const started = (async () => {
        await slot();
        try {
          return await get();
        } finally {
          release();
        }
      })().finally(() => inFlight.delete(key));
      inFlight.set(key, started);
      return started;
    },
  };
}

export function confirmer(log: Logger, limits = { reads: MAX_READS, waiting: MAX_WAITING }): Confirmer {
  const { read, load } = sharedReads(limits);
  return {
    load,
    async confirm(hook, claimed, deps) {
      const id = `${claimed.namespace}/${claimed.name}`;
      const refuse = (mismatch: string): HookResult => {
        log.warn('hook request does not match the API server; nothing done', { hook, cluster: id, mismatch });
        const message = `Cluster ${id}: ${mismatch}`;
        return hook === 'BeforeClusterDelete' ? success(`${message}; nothing deleted`) : failure(message);
      };
      // From the API server itself, not the watch caches: CAPI calls a hook right after it wrote the Cluster
      // (BeforeClusterUpgrade after the version bump), and a cache may be a moment behind.
      const pending = read(id, () => (deps.live ?? deps.management).getObject({ apiVersion: deps.clusterApiVersion, kind: 'Cluster', namespace: claimed.namespace, name: claimed.name }));
      if (!pending) {
        const busy = `Cluster ${id}: the extension is checking ${limits.reads + limits.waiting} hook requests against the API server already; not checked now (CAPI retries)`;
        log.warn('hook request not checked: too many waiting', { hook, cluster: id });
        // A real deletion turned away must not go ahead without us (its registry's volumes would be left): BCD waits and is asked again.
        return hook === 'BeforeClusterDelete' ? retryLater(BUSY_RETRY_SECONDS, `${busy}; nothing deleted yet`) : failure(busy);
      }
      const stored = await pending;
      if (!stored) return refuse('the request names a Cluster that the management API server does not have');
      const metadata = (stored.metadata ?? {}) as { uid?: string; deletionTimestamp?: string };
      if (!claimed.uid || claimed.uid !== metadata.uid) return refuse(`the request's metadata.uid ${JSON.stringify(claimed.uid ?? '')} is not the Cluster's (${metadata.uid})`);
      if (hook === 'BeforeClusterDelete' && !metadata.deletionTimestamp) return refuse('the Cluster is not being deleted (no deletionTimestamp)');
      const parsed = parseCluster(stored);
      if (!parsed.ok) return failure(`Cluster ${id}: ${parsed.message}`);
      return parsed.value;
    },
  };
}
