// The registry addon's answer to each hook. Clusters that have not opted in are left alone on every
// hook (Success, no API call). Opted-in Clusters: BCC prepares the CA, ACPI and BCU deploy (and
// renew), BeforeClusterDelete removes, GeneratePatches answers from the request alone and asks the
// background loop to converge the Cluster.
//
// What a registry problem may hold back, chosen on purpose (README, "What blocks what"):
//   BeforeClusterCreate   blocks: without the CA copy and node script Secrets, node bootstrap would
//                         hang on a missing Secret; a message that says what to do is better.
//   ACPI, BCU             never block: a Failure would hold the Cluster's control plane, workers or
//                         upgrade hostage for an add-on. They answer Success, mark the Cluster
//                         (annotation, Event, metric) and the background loop retries until it works.
//   BeforeClusterDelete   blocks only while the registry's volumes are being deleted in the workload
//                         cluster, for a bounded time (volumes.ts); never for anything else.
import { KubeError } from '../kube/client.ts';
import { CLUSTER_SELECTOR_LABEL, REGISTRY_RETRYING, REGISTRY_STATUS_ANNOTATION } from '../render/helmchartproxy.ts';
import type { Logger } from '../observe/log.ts';
import type { HookName } from '../runtime-sdk/catalog.ts';
import { parseCluster, type HookRequest, type LifecycleRequest } from '../runtime-sdk/request.ts';
import { failure, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import type { HookContext } from '../runtime-sdk/wrapper.ts';
import { RenderError } from '../render/metadata.ts';
import { clusterConfigVariable } from '../render/variables.ts';
import { converger, type ConvergeOutcome } from './converge.ts';
import { markCluster, retryingStatus } from './cluster-marks.ts';
import { deployRegistry, optOutRegistry, removeRegistry, type AddonDeps, type DeployOptions } from './deploy.ts';
import { registryOptIn, registryState } from './opt-in.ts';
import { generatePatches as patchesFor, patchedCluster } from './patches.ts';
import { isHookResult, setupCluster } from './setup.ts';
import { releaseRegistryVolumes } from './volumes.ts';
import { kubeconfigSecret } from './workload-secrets.ts';
import { whenAborted } from '../lib/abort.ts';
import { confirmer } from './confirm.ts';

export type AddonHandler = (request: HookRequest, ctx: HookContext) => Promise<HookResult>;

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
  /** Told when a Cluster is gone (BeforeClusterDelete, or the day-2 queue found it deleted). */
  onGone?: (namespace: string, name: string) => void;
}

export interface Addon {
  handlers: Record<HookName, AddonHandler>;
  /**
   * Puts every opted-in (or still labelled) Cluster into the background loop, from one list of the
   * Clusters: after a start or a restart nothing waits for CAPI's next resync; repeated every interval,
   * it also finds Clusters whose hooks went to another replica. Returns how many.
   */
  seed(): Promise<number>;
  /** The replicas changed: pass now over the Clusters this one now owns. */
  rebalance(): void;
  /** Cancels the background loop's timers. */
  stop(): void;
}

/** How a lifecycle hook answers when the registry's work fails for a confirmed, opted-in Cluster. */
type OnTrouble = 'block' | 'background' | 'neverBlock';

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

/** Cluster status in both shapes: v1beta2 `initialization.controlPlaneInitialized`, v1beta1 `controlPlaneReady` or the condition. */
export function controlPlaneInitialized(raw: Record<string, unknown>): boolean {
  const status = (raw.status ?? {}) as Record<string, any>;
  if (status.initialization?.controlPlaneInitialized === true || status.controlPlaneReady === true) return true;
  const conditions = [...(status.conditions ?? []), ...(status.v1beta2?.conditions ?? [])];
  return conditions.some((c: any) => c?.type === 'ControlPlaneInitialized' && c?.status === 'True');
}

/**
 * The version a BeforeClusterUpgrade body names, if it is the Cluster's own topology version (CAPI sends
 * exactly that): a body naming any other version renews nothing, so forged bodies cannot churn certificates.
 */
function upgradeTarget(cluster: ClusterRef, claimed: string | undefined): string | undefined {
  const version = ((cluster.raw.spec ?? {}) as { topology?: { version?: unknown } }).topology?.version;
  return typeof version === 'string' && version === claimed ? version : undefined;
}

export function createAddon(rt: AddonRuntime): Addon {
  const serialize = keyedLock();
  const deploy = async (cluster: ClusterRef, deps: AddonDeps, opts?: DeployOptions) => {
    const result = await deployRegistry(cluster, deps, opts);
    if (result.status === 'Success' && !result.retryAfterSeconds) rt.onDeployed?.(cluster);
    return result;
  };
  /**
   * Runs `work` with the management side; without one, a Failure. `neverBlock` (BeforeClusterDelete):
   * a Success that says what went wrong instead, and no waiting behind the Cluster's lock, which a
   * call to an unreachable workload API server may hold for long.
   */
  const withDeps = (cluster: ClusterRef, work: (deps: AddonDeps, waited: boolean) => Promise<HookResult>, neverBlock = false) => {
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
  };

  const confirmations = confirmer(rt.log);

  /**
   * A failed (or retry-later) attempt for a confirmed, opted-in Cluster that must not block: the Cluster
   * is marked `Retrying: …` (best effort), an Event is recorded, the background loop takes over, and
   * the hook answers Success with the same words.
   */
  const inBackground = async (cluster: ClusterRef, step: HookName | 'Converge', result: HookResult, deps: AddonDeps | undefined): Promise<HookResult> => {
    const reason = result.message ?? 'not ready yet';
    rt.onFailure?.(cluster, step, reason);
    const status = retryingStatus(cluster, reason);
    if (deps) {
      await markCluster(cluster, deps.management, deps.clusterApiVersion, { status }).catch((err: unknown) =>
        rt.log.warn('cannot mark the Cluster', { cluster: `${cluster.namespace}/${cluster.name}`, error: err instanceof Error ? err.message : String(err) }));
    }
    return success(`registry not deployed yet (${status.slice(REGISTRY_RETRYING.length)}); capi-registry-addon retries in the background: see the Cluster's annotation ${REGISTRY_STATUS_ANNOTATION} and its Events`);
  };
  const stillWorking = success(`registry deployment still in progress as CAPI's timeout nears; capi-registry-addon finishes it in the background: see the Cluster's annotation ${REGISTRY_STATUS_ANNOTATION} and its Events`);
  const troubled = (r: HookResult) => r.status === 'Failure' || !!r.retryAfterSeconds;

  const lifecycle = (hook: HookName, work: (cluster: ClusterRef, deps: AddonDeps, request: LifecycleRequest, signal: AbortSignal) => Promise<HookResult>, onTrouble: OnTrouble): AddonHandler =>
    async (request, ctx) => {
      if (request.kind !== 'lifecycle') throw new TypeError(`${hook} got a ${request.kind} request`);
      // A body that does not ask for the registry asks for nothing: no API call (a forged one gains nothing).
      if (registryOptIn(request.cluster.variables).enabled === false) return success();
      // The claim is checked before the Cluster's lock is taken (confirm.ts): forged bodies naming a real
      // Cluster do not queue in front of its real hooks.
      let checked: ClusterRef | HookResult;
      try {
        checked = await confirmations.confirm(hook, request.cluster, await rt.deps());
      } catch (err) {
        if (!(err instanceof KubeError)) throw err;
        const message = `Cluster ${request.cluster.namespace}/${request.cluster.name}: ${err.message}`;
        return onTrouble === 'neverBlock' ? success(message) : failure(message);
      }
      if (isHookResult(checked)) return checked;
      let confirmed: ClusterRef | undefined;
      const attempt = withDeps(checked, async (deps, waited) => {
        // Read again when the lock was held by another step for this Cluster: it may have changed the Cluster (its marks).
        const cluster = waited ? await confirmations.confirm(hook, checked as ClusterRef, deps) : (checked as ClusterRef);
        if (isHookResult(cluster)) return cluster;
        const optIn = registryOptIn(cluster.variables);
        if (!optIn.enabled) return success();
        confirmed = cluster;
        // BeforeClusterDelete removes what we made whatever the variable says now: an invalid value must not block deletion.
        const outcome = optIn.enabled === 'invalid' && hook !== 'BeforeClusterDelete'
          ? failure(`Cluster ${cluster.namespace}/${cluster.name}: ${optIn.message}`)
          : await work(cluster, deps, request, ctx.signal);
        if (onTrouble !== 'background') return outcome;
        // Also after a success: CAPI marks ACPI done with a merge patch computed from the Cluster it read
        // before calling us, which drops every annotation when its pending-hooks one was the last, ours
        // (written during the call) included. The next pass puts the marks back.
        queue.retrySoon(cluster.namespace, cluster.name);
        return troubled(outcome) ? inBackground(cluster, hook, outcome, deps) : outcome;
      }, onTrouble === 'neverBlock');
      // Work that is still going when CAPI's timeout nears goes on in the background (it marks the
      // Cluster if it fails); the hook does not wait for it.
      const result = onTrouble === 'background' ? await Promise.race([attempt, whenAborted(ctx.signal).then(() => stillWorking)]) : await attempt;
      if (confirmed) {
        rt.onResult?.(confirmed, hook, result.status);
        if (result.status === 'Failure') rt.onFailure?.(confirmed, hook, result.message ?? '');
      }
      return result;
    };

  const converge = async (namespace: string, name: string): Promise<ConvergeOutcome> => {
    let deps: AddonDeps;
    let raw: Record<string, unknown> | undefined;
    try {
      deps = await rt.deps();
      raw = await deps.management.getObject({ apiVersion: deps.clusterApiVersion, kind: 'Cluster', namespace, name });
    } catch (err) {
      if (err instanceof KubeError) return { result: failure(`Cluster ${namespace}/${name}: ${err.message}`), watch: false };
      throw err;
    }
    if (!raw || (raw.metadata as Record<string, unknown> | undefined)?.deletionTimestamp) {
      rt.onGone?.(namespace, name);
      return { result: success(), watch: false };
    }
    const parsed = parseCluster(raw);
    if (!parsed.ok) return { result: failure(`Cluster ${namespace}/${name}: ${parsed.message}`), watch: false };
    const cluster = parsed.value;
    const labels = ((raw.metadata ?? {}) as { labels?: Record<string, string> }).labels ?? {};
    const optIn = registryOptIn(cluster.variables);
    const state = registryState(optIn);
    if (optIn.enabled === false) {
      // Not opted in: nothing to do, unless it was (our label is there): it opted out. A clusterConfig
      // that does not parse is not an opt-out: a typo must not remove a registry.
      if (!(CLUSTER_SELECTOR_LABEL in labels)) return { result: success(), watch: false, state };
      rt.onGone?.(namespace, name);
      return { result: await withDeps(cluster, (d) => optOutRegistry(cluster, d)), watch: false, state };
    }
    const initialized = controlPlaneInitialized(raw);
    const result = await withDeps(cluster, async (d) => {
      const attempt = optIn.enabled === 'invalid' ? failure(`Cluster ${namespace}/${name}: ${optIn.message}`) : initialized ? await deploy(cluster, d) : await setupCluster(cluster, d);
      // Before initialization the hooks (BCC) speak for the Cluster; after it, the marks do.
      return initialized && troubled(attempt) ? { ...(await inBackground(cluster, 'Converge', attempt, d)), status: 'Failure' as const } : attempt;
    });
    return { result, watch: true, state };
  };
  const queue = converger({ log: rt.log, intervalMs: rt.convergeIntervalMs, run: converge, ...(rt.owns ? { owns: rt.owns } : {}) });

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
      BeforeClusterCreate: lifecycle('BeforeClusterCreate', setupCluster, 'block'),
      AfterControlPlaneInitialized: lifecycle('AfterControlPlaneInitialized', (cluster, deps) => deploy(cluster, deps), 'background'),
      BeforeClusterUpgrade: lifecycle('BeforeClusterUpgrade', (cluster, deps, request) => deploy(cluster, deps, { upgradeTo: upgradeTarget(cluster, request.fields.toKubernetesVersion) }), 'background'),
      BeforeClusterDelete: lifecycle('BeforeClusterDelete', async (cluster, deps, _request, signal) => {
        queue.forget(cluster.namespace, cluster.name);
        rt.onGone?.(cluster.namespace, cluster.name);
        // The proxy first: CAAPH then uninstalls the release too, and never reinstalls it.
        const removed = await removeRegistry(cluster, deps);
        const volumes = await releaseRegistryVolumes(cluster, deps, signal);
        // The volumes needed the workload client again: drop it once more, or the cache keeps it for a deleted Cluster.
        deps.workloadClients.forget(cluster.namespace, kubeconfigSecret(cluster.name));
        return { ...volumes, message: [removed.message, volumes.message].filter(Boolean).join('; ') || undefined };
      }, 'neverBlock'),
      GeneratePatches: generatePatches,
      DiscoverVariables: async () => success(undefined, { variables: [clusterConfigVariable] }),
    },
    async seed() {
      const deps = await rt.deps();
      const clusters = await deps.management.listObjects({ apiVersion: deps.clusterApiVersion, kind: 'Cluster' }, '');
      let seeded = 0;
      for (const raw of clusters) {
        const parsed = parseCluster(raw);
        if (!parsed.ok) continue;
        const labels = ((raw.metadata ?? {}) as { labels?: Record<string, string> }).labels ?? {};
        if (registryOptIn(parsed.value.variables).enabled === false && !(CLUSTER_SELECTOR_LABEL in labels)) continue;
        queue.watch(parsed.value.namespace, parsed.value.name);
        seeded++;
      }
      return seeded;
    },
    rebalance: () => queue.rebalance(),
    stop: () => queue.stop(),
  };
}
