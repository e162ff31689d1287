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
import { REGISTRY_STATUS_ANNOTATION } from '../render/helmchartproxy.ts';
import type { HookName } from '../runtime-sdk/catalog.ts';
import type { HookRequest, LifecycleRequest } from '../runtime-sdk/request.ts';
import { failure, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import type { HookContext } from '../runtime-sdk/wrapper.ts';
import { RenderError } from '../render/metadata.ts';
import { clusterConfigVariable } from '../render/variables.ts';
import { attempts, troubled, type AddonRuntime } from './attempts.ts';
import { backgroundLoop } from './background/loop.ts';
import { removeRegistry, type AddonDeps } from './deploy.ts';
import { registryOptIn } from './opt-in.ts';
import { generatePatches as patchesFor, patchedCluster } from './patches.ts';
import { isHookResult, setupCluster } from './setup.ts';
import { releaseRegistryVolumes } from './volumes.ts';
import { kubeconfigSecret } from './workload-secrets.ts';
import { whenAborted } from '../lib/abort.ts';
import { confirmer } from './confirm.ts';

export type AddonHandler = (request: HookRequest, ctx: HookContext) => Promise<HookResult>;

export type { AddonRuntime } from './attempts.ts';
export { controlPlaneInitialized } from './background/loop.ts';

export interface Addon {
  handlers: Record<HookName, AddonHandler>;
  /**
   * Puts every Cluster of ours into the background loop, from the watch cache's first list: after a
   * start or a restart nothing waits for CAPI's next resync. Returns how many.
   */
  seed(clusters: Record<string, unknown>[]): number;
  /** The Cluster cache saw a Cluster appear, change or go (undefined). */
  clusterChanged(namespace: string, name: string, raw: Record<string, unknown> | undefined): void;
  /** Something of ours beside the Cluster changed or went: its pass runs at once (on the replica that owns it). */
  nudge(namespace: string, name: string): void;
  /** The replicas changed: pass now over the Clusters this one now owns. */
  rebalance(): void;
  /** Cancels the background loop's timers. */
  stop(): void;
}

/** How a lifecycle hook answers when the registry's work fails for a confirmed, opted-in Cluster. */
type OnTrouble = 'block' | 'background' | 'neverBlock';

/**
 * The version a BeforeClusterUpgrade body names, if it is the Cluster's own topology version (CAPI sends
 * exactly that): a body naming any other version renews nothing, so forged bodies cannot churn certificates.
 */
function upgradeTarget(cluster: ClusterRef, claimed: string | undefined): string | undefined {
  const version = ((cluster.raw.spec ?? {}) as { topology?: { version?: unknown } }).topology?.version;
  return typeof version === 'string' && version === claimed ? version : undefined;
}

export function createAddon(rt: AddonRuntime): Addon {
  const a = attempts(rt);
  const loop = backgroundLoop(rt, a);
  const queue = loop.queue;
  const confirmations = confirmer(rt.log);

  const stillWorking = success(`registry deployment still in progress as CAPI's timeout nears; capi-registry-addon finishes it in the background: see the Cluster's annotation ${REGISTRY_STATUS_ANNOTATION} and its Events`);

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
      const attempt = a.withDeps(checked, async (deps, waited) => {
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
        return troubled(outcome) ? a.inBackground(cluster, hook, outcome, deps) : outcome;
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
      AfterControlPlaneInitialized: lifecycle('AfterControlPlaneInitialized', (cluster, deps) => a.deploy(cluster, deps), 'background'),
      BeforeClusterUpgrade: lifecycle('BeforeClusterUpgrade', (cluster, deps, request) => a.deploy(cluster, deps, { upgradeTo: upgradeTarget(cluster, request.fields.toKubernetesVersion) }), 'background'),
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
    seed: (clusters) => loop.seed(clusters),
    clusterChanged: (namespace, name, raw) => loop.clusterChanged(namespace, name, raw),
    nudge: (namespace, name) => queue.nudge(namespace, name),
    rebalance: () => queue.rebalance(),
    stop: () => queue.stop(),
  };
}
