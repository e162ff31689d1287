// What the hooks and the background loop share: the runtime they are given, one lifecycle step at a
// time per Cluster, and how a failed attempt that must not block is reported (mark, Event) and handed
// to the background loop.
import { KubeError } from '../kube/client.ts';
import type { Logger } from '../observe/log.ts';
import { REGISTRY_RETRYING, REGISTRY_STATUS_ANNOTATION } from '../render/helmchartproxy.ts';
import type { HookName } from '../runtime-sdk/catalog.ts';
import { failure, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import { markCluster, retryingStatus } from './cluster-marks.ts';
import { deployRegistry, type AddonDeps, type DeployOptions } from './deploy.ts';

export interface AddonRuntime {
  /** The management-cluster side; rejects with a KubeError when no connection is configured. */
  deps(): Promise<AddonDeps>;
  log: Logger;
  /** Day-2 queue tuning (tests shorten it). */
  convergeIntervalMs?: number;
  /** Whether this replica does a Cluster's periodic passes (membership.ts); every Cluster when absent. */
  owns?: (key: string) => boolean;
  /** Told when a Cluster's registry was (re)deployed: its certificate expiry may have changed. */
  onDeployed?: (cluster: ClusterRef) => void;
  /** Told of every failed step for a confirmed, opted-in Cluster (Events): a hook's name, or `Converge` for the background loop. */
  onFailure?: (cluster: ClusterRef, step: HookName | 'Converge', message: string) => void;
  /** Told of every answer for a confirmed, opted-in Cluster (per-Cluster metrics: never a name only a body claimed). */
  onResult?: (cluster: ClusterRef, hook: HookName, status: HookResult['status']) => void;
  /** Told of every finished background pass (metrics). */
  onPass?: (status: HookResult['status'] | 'Threw') => void;
  /** Told when a Cluster is gone (BeforeClusterDelete, or the day-2 queue found it deleted). */
  onGone?: (namespace: string, name: string) => void;
}

/** A failed attempt, or one CAPI should repeat later. */
export const troubled = (r: HookResult) => r.status === 'Failure' || !!r.retryAfterSeconds;

/** One lifecycle step at a time per Cluster in this process: hooks and the day-2 queue share it. `work` is told whether it waited for another. */
function keyedLock() {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, work: (waited: boolean) => Promise<T>): Promise<T> => {
    const before = tails.get(key);
    const go = () => work(before !== undefined);
    const run = (before ?? Promise.resolve()).then(go, go);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => tails.get(key) === tail && tails.delete(key));
    return run;
  };
}

export interface Attempts {
  /**
   * Runs `work` with the management side, under the Cluster's lock; without a connection, a Failure.
   * `neverBlock` (BeforeClusterDelete): a Success that says what went wrong instead, and no waiting
   * behind the lock, which a call to an unreachable workload API server may hold for long.
   */
  withDeps(cluster: ClusterRef, work: (deps: AddonDeps, waited: boolean) => Promise<HookResult>, neverBlock?: boolean): Promise<HookResult>;
  /** deployRegistry, telling `onDeployed` after a finished success. */
  deploy(cluster: ClusterRef, deps: AddonDeps, opts?: DeployOptions): Promise<HookResult>;
  /**
   * A failed (or retry-later) attempt for a confirmed, opted-in Cluster that must not block: the Cluster
   * is marked `Retrying: …` (best effort), an Event is recorded, and the answer is a Success with the
   * same words (the background loop takes over).
   */
  inBackground(cluster: ClusterRef, step: HookName | 'Converge', result: HookResult, deps: AddonDeps | undefined): Promise<HookResult>;
}

export function attempts(rt: AddonRuntime): Attempts {
  const serialize = keyedLock();
  return {
    withDeps(cluster, work, neverBlock = false) {
      const run = async (waited = false) => {
        try {
          return await work(await rt.deps(), waited);
        } catch (err) {
          if (!(err instanceof KubeError)) throw err;
          const message = `Cluster ${cluster.namespace}/${cluster.name}: ${err.message}`;
          return neverBlock ? success(message) : failure(message);
        }
      };
      return neverBlock ? run() : serialize(`${cluster.namespace}/${cluster.name}`, run);
    },
    async deploy(cluster, deps, opts) {
      const result = await deployRegistry(cluster, deps, opts);
      if (result.status === 'Success' && !result.retryAfterSeconds) rt.onDeployed?.(cluster);
      return result;
    },
    async inBackground(cluster, step, result, deps) {
      const reason = result.message ?? 'not ready yet';
      rt.onFailure?.(cluster, step, reason);
      const status = retryingStatus(cluster, reason);
      if (deps) {
        await markCluster(cluster, deps.management, deps.clusterApiVersion, { status }).catch((err: unknown) =>
          rt.log.warn('cannot mark the Cluster', { cluster: `${cluster.namespace}/${cluster.name}`, error: err instanceof Error ? err.message : String(err) }));
      }
      return success(`registry not deployed yet (${status.slice(REGISTRY_RETRYING.length)}); capi-registry-addon retries in the background: see the Cluster's annotation ${REGISTRY_STATUS_ANNOTATION} and its Events`);
    },
  };
}
