// The registry addon's answer to each hook. Clusters that have not opted in are left alone on every
// hook (Success, no API call). Opted-in Clusters: BCC prepares the CA, ACPI and BCU deploy (and
// renew), BeforeClusterDelete removes, GeneratePatches answers from the request alone and asks the
// day-2 queue to converge the Cluster in the background.
import { KubeError } from '../kube/client.ts';
import { CLUSTER_SELECTOR_LABEL } from '../render/helmchartproxy.ts';
import type { Logger } from '../observe/log.ts';
import type { HookName } from '../runtime-sdk/catalog.ts';
import { parseCluster, type HookRequest } from '../runtime-sdk/request.ts';
import { failure, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import type { HookContext } from '../runtime-sdk/wrapper.ts';
import { RenderError } from '../render/metadata.ts';
import { clusterConfigVariable } from '../render/variables.ts';
import { converger } from './converge.ts';
import { deployRegistry, optOutRegistry, removeRegistry, type AddonDeps } from './deploy.ts';
import { registryOptIn } from './opt-in.ts';
import { generatePatches as patchesFor, patchedCluster } from './patches.ts';
import { isHookResult, setupCluster } from './setup.ts';

export type AddonHandler = (request: HookRequest, ctx: HookContext) => Promise<HookResult>;

export interface AddonRuntime {
  /** The management-cluster side; rejects with a KubeError when no connection is configured. */
  deps(): Promise<AddonDeps>;
  log: Logger;
  /** Day-2 queue tuning (tests shorten it). */
  convergeIntervalMs?: number;
  /** Told when a Cluster's registry was (re)deployed: its certificate expiry may have changed. */
  onDeployed?: (cluster: ClusterRef) => void;
  /** Told of every Failure a lifecycle hook returns for a confirmed, opted-in Cluster (Events). */
  onFailure?: (cluster: ClusterRef, hook: HookName, message: string) => void;
  /** Told of every answer for a confirmed, opted-in Cluster (per-Cluster metrics: never a name only a body claimed). */
  onResult?: (cluster: ClusterRef, hook: HookName, status: HookResult['status']) => void;
  /** Told when a Cluster is gone (BeforeClusterDelete, or the day-2 queue found it deleted). */
  onGone?: (namespace: string, name: string) => void;
}

export interface Addon {
  handlers: Record<HookName, AddonHandler>;
}

/** One lifecycle step at a time per Cluster in this process: hooks and the day-2 queue share it. */
function keyedLock() {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const run = (tails.get(key) ?? Promise.resolve()).then(work, work);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => tails.get(key) === tail && tails.delete(key));
    return run;
  };
}

/** Cluster status in both shapes: v1beta2 `initialization.controlPlaneInitialized`, v1beta1 `controlPlaneReady` or the condition. */
export function controlPlaneInitialized(raw: Record<string, unknown>): boolean {
  const status = (raw.status ?? {}) as Record<string, any>;
  if (status.initialization?.controlPlaneInitialized === true || status.controlPlaneReady === true) return true;
  const conditions = [...(status.conditions ?? []), ...(status.v1beta2?.conditions ?? [])];
  return conditions.some((c: any) => c?.type === 'ControlPlaneInitialized' && c?.status === 'True');
}

export function createAddon(rt: AddonRuntime): Addon {
  const serialize = keyedLock();
  const deploy = async (cluster: ClusterRef, deps: AddonDeps) => {
    const result = await deployRegistry(cluster, deps);
    if (result.status === 'Success') rt.onDeployed?.(cluster);
    return result;
  };
  /**
   * Runs `work` with the management side; without one, a Failure. `neverBlock` (BeforeClusterDelete):
   * a Success that says what went wrong instead, and no waiting behind the Cluster's lock, which a
   * call to an unreachable workload API server may hold for long.
   */
  const withDeps = (cluster: ClusterRef, work: (deps: AddonDeps) => Promise<HookResult>, neverBlock = false) => {
    const run = async () => {
      try {
        return await work(await rt.deps());
      } catch (err) {
        if (!(err instanceof KubeError)) throw err;
        const message = `Cluster ${cluster.namespace}/${cluster.name}: ${err.message}`;
        return neverBlock ? success(message) : failure(message);
      }
    };
    return neverBlock ? run() : serialize(`${cluster.namespace}/${cluster.name}`, run);
  };

  /**
   * A hook body is a claim, not the truth: whoever reaches the hook port can send one. The Cluster is
   * read back by namespace/name, its UID must match the claim, and everything acted on (variables,
   * annotations, network, owner UID) comes from the API server's object. BeforeClusterDelete acts only
   * on a Cluster that is being deleted. A mismatch is answered (BCD: Success, nothing deleted) and
   * logged at warn; nothing is written.
   */
  const confirm = async (hook: HookName, claimed: ClusterRef, deps: AddonDeps): Promise<ClusterRef | HookResult> => {
    const id = `${claimed.namespace}/${claimed.name}`;
    const refuse = (mismatch: string): HookResult => {
      rt.log.warn('hook request does not match the API server; nothing done', { hook, cluster: id, mismatch });
      const message = `Cluster ${id}: ${mismatch}`;
      return hook === 'BeforeClusterDelete' ? success(`${message}; nothing deleted`) : failure(message);
    };
    const stored = await deps.management.getObject({ apiVersion: deps.clusterApiVersion, kind: 'Cluster', namespace: claimed.namespace, name: claimed.name });
    if (!stored) return refuse('the request names a Cluster that the management API server does not have');
    const metadata = (stored.metadata ?? {}) as { uid?: string; deletionTimestamp?: string };
    if (!claimed.uid || claimed.uid !== metadata.uid) return refuse(`the request's metadata.uid ${JSON.stringify(claimed.uid ?? '')} is not the Cluster's (${metadata.uid})`);
    if (hook === 'BeforeClusterDelete' && !metadata.deletionTimestamp) return refuse('the Cluster is not being deleted (no deletionTimestamp)');
    const parsed = parseCluster(stored);
    if (!parsed.ok) return failure(`Cluster ${id}: ${parsed.message}`);
    return parsed.value;
  };

  const lifecycle = (hook: HookName, work: (cluster: ClusterRef, deps: AddonDeps) => Promise<HookResult>, neverBlock = false): AddonHandler =>
    async (request) => {
      if (request.kind !== 'lifecycle') throw new TypeError(`${hook} got a ${request.kind} request`);
      // A body that does not ask for the registry asks for nothing: no API call (a forged one gains nothing).
      if (registryOptIn(request.cluster.variables).enabled === false) return success();
      let confirmed: ClusterRef | undefined;
      const result = await withDeps(request.cluster, async (deps) => {
        const cluster = await confirm(hook, request.cluster, deps);
        if (isHookResult(cluster)) return cluster;
        const optIn = registryOptIn(cluster.variables);
        if (!optIn.enabled) return success();
        confirmed = cluster;
        // BeforeClusterDelete removes what we made whatever the variable says now: an invalid value must not block deletion.
        if (optIn.enabled === 'invalid' && hook !== 'BeforeClusterDelete') return failure(`Cluster ${cluster.namespace}/${cluster.name}: ${optIn.message}`);
        return work(cluster, deps);
      }, neverBlock);
      if (confirmed) {
        rt.onResult?.(confirmed, hook, result.status);
        if (result.status === 'Failure') rt.onFailure?.(confirmed, hook, result.message ?? '');
      }
      return result;
    };

  const queue = converger({
    log: rt.log,
    intervalMs: rt.convergeIntervalMs,
    run: async (namespace, name) => {
      let deps: AddonDeps;
      let raw: Record<string, unknown> | undefined;
      try {
        deps = await rt.deps();
        raw = await deps.management.getObject({ apiVersion: deps.clusterApiVersion, kind: 'Cluster', namespace, name });
      } catch (err) {
        if (err instanceof KubeError) return failure(`Cluster ${namespace}/${name}: ${err.message}`);
        throw err;
      }
      if (!raw || (raw.metadata as Record<string, unknown> | undefined)?.deletionTimestamp) {
        rt.onGone?.(namespace, name);
        return success();
      }
      const parsed = parseCluster(raw);
      if (!parsed.ok) return failure(`Cluster ${namespace}/${name}: ${parsed.message}`);
      const cluster = parsed.value;
      const labels = ((raw.metadata ?? {}) as { labels?: Record<string, string> }).labels ?? {};
      if (registryOptIn(cluster.variables).enabled === false) {
        // Not opted in: nothing to do, unless it was (our label is there): it opted out. A clusterConfig
        // that does not parse is not an opt-out: a typo must not remove a registry.
        if (!(CLUSTER_SELECTOR_LABEL in labels)) return success();
        rt.onGone?.(namespace, name);
        return withDeps(cluster, (d) => optOutRegistry(cluster, d));
      }
      const initialized = controlPlaneInitialized(raw);
      return withDeps(cluster, (d) => (initialized ? deploy(cluster, d) : setupCluster(cluster, d)));
    },
  });

  const generatePatches: AddonHandler = async (request) => {
    if (request.kind !== 'generatePatches') throw new TypeError(`GeneratePatches got a ${request.kind} request`);
    try {
      const items = patchesFor(request.variables, request.items);
      // Every Cluster, opted in or not: the queue reads it back (once per interval) to converge it, or to
      // remove what we made when it opted out.
      const cluster = patchedCluster(request.variables, request.items);
      if (cluster) queue.request(cluster.namespace, cluster.name, cluster.registry);
      return success(undefined, { items });
    } catch (err) {
      if (err instanceof RenderError) return failure(err.message);
      throw err;
    }
  };

  return {
    handlers: {
      BeforeClusterCreate: lifecycle('BeforeClusterCreate', setupCluster),
      AfterControlPlaneInitialized: lifecycle('AfterControlPlaneInitialized', deploy),
      BeforeClusterUpgrade: lifecycle('BeforeClusterUpgrade', deploy),
      BeforeClusterDelete: lifecycle('BeforeClusterDelete', (cluster, deps) => {
        queue.forget(cluster.namespace, cluster.name);
        rt.onGone?.(cluster.namespace, cluster.name);
        return removeRegistry(cluster, deps);
      }, true),
      GeneratePatches: generatePatches,
      DiscoverVariables: async () => success(undefined, { variables: [clusterConfigVariable] }),
    },
  };
}
