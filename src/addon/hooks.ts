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
import type { BeforeClusterUpgradeRequest, GeneratePatchesRequest, HookRequests, LifecycleRequest } from '../runtime-sdk/request.ts';
import { failure, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import type { HookContext } from '../runtime-sdk/wrapper.ts';
import { RenderError } from '../render/metadata.ts';
import { clusterConfigVariable } from '../render/variables.ts';
import { attempts, troubled, type AddonRuntime, type Attempts } from './attempts.ts';
import type { Converger } from './converge.ts';
import { backgroundLoop } from './background/loop.ts';
import { removeRegistry, type AddonDeps, type DeployOptions } from './deploy.ts';
import { registryOptIn } from './opt-in.ts';
import { generatePatches as patchesFor, patchedCluster } from './patches.ts';
import { isHookResult, setupCluster } from './setup.ts';
import { releaseRegistryVolumes } from './volumes.ts';
import { kubeconfigSecret } from './workload-secrets.ts';
import { whenAborted } from '../lib/abort.ts';
import { confirmer, type Confirmer } from './confirm.ts';

/** One handler per hook, each typed to its own request. */
export type HookHandlers = { [H in HookName]: (request: HookRequests[H], ctx: HookContext) => Promise<HookResult> };

export type { AddonRuntime } from './attempts.ts';
export { controlPlaneInitialized } from './background/loop.ts';

export interface Addon {
  handlers: HookHandlers;
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

/**
 * The version a BeforeClusterUpgrade body names, if it is the Cluster's own topology version (CAPI sends
 * exactly that): a body naming any other version renews nothing, so forged bodies cannot churn certificates.
 */
function upgradeTarget(cluster: ClusterRef, claimed: string | undefined): string | undefined {
  const version = ((cluster.raw.spec ?? {}) as { topology?: { version?: unknown } }).topology?.version;
  return typeof version === 'string' && version === claimed ? version : undefined;
}

type LifecycleHook = Exclude<HookName, 'GeneratePatches' | 'DiscoverVariables'>;
type Work = (cluster: ClusterRef, deps: AddonDeps) => Promise<HookResult>;

/** What every handler works with. */
interface Scope {
  rt: AddonRuntime;
  a: Attempts;
  queue: Converger;
  confirmations: Confirmer;
}

const STILL_WORKING = success(`registry deployment still in progress as CAPI's timeout nears; capi-registry-addon finishes it in the background: see the Cluster's annotation ${REGISTRY_STATUS_ANNOTATION} and its Events`);

/**
 * The body's Cluster as the API server has it, when the body asks for the registry and its claim holds;
 * else the answer. A body that does not ask asks for nothing: no API call (a forged one gains nothing).
 * The claim is checked before the Cluster's lock is taken (confirm.ts): forged bodies naming a real
 * Cluster do not queue in front of its real hooks. `unreachable` words the answer without a connection.
 */
async function confirmClaim(s: Scope, hook: LifecycleHook, request: LifecycleRequest, unreachable: (message: string) => HookResult): Promise<ClusterRef | HookResult> {
  if (registryOptIn(request.cluster.variables).enabled === false) return success();
  try {
    return await s.confirmations.confirm(hook, request.cluster, await s.rt.deps());
  } catch (err) {
    if (!(err instanceof KubeError)) throw err;
    return unreachable(`Cluster ${request.cluster.namespace}/${request.cluster.name}: ${err.message}`);
  }
}

interface StepOptions {
  /** No lock (BeforeClusterDelete): a call to an unreachable workload API server may hold it for long. */
  neverBlock?: boolean;
  /** Sees every outcome (an invalid opt-in too). */
  then?: (cluster: ClusterRef, deps: AddonDeps, outcome: HookResult) => Promise<HookResult>;
  /** When given, the hook answers near CAPI's deadline and the work goes on (it marks the Cluster if it fails). */
  signal?: AbortSignal;
}

/**
 * `work` under the Cluster's lock, for a Cluster still opted in: read again when another step held the
 * lock (it may have changed the Cluster's marks). The answer is told to the metrics and Events for a
 * confirmed Cluster only.
 */
async function step(s: Scope, hook: LifecycleHook, claimed: ClusterRef, work: Work, opts: StepOptions = {}): Promise<HookResult> {
  let confirmed: ClusterRef | undefined;
  const attempt = s.a.withDeps(claimed, async (deps, waited) => {
    const cluster = waited ? await s.confirmations.confirm(hook, claimed, deps) : claimed;
    if (isHookResult(cluster)) return cluster;
    const optIn = registryOptIn(cluster.variables);
    if (!optIn.enabled) return success();
    confirmed = cluster;
    // BeforeClusterDelete removes what we made whatever the variable says now: an invalid value must not block deletion.
    const outcome = optIn.enabled === 'invalid' && hook !== 'BeforeClusterDelete' ? failure(`Cluster ${cluster.namespace}/${cluster.name}: ${optIn.message}`) : await work(cluster, deps);
    return opts.then ? opts.then(cluster, deps, outcome) : outcome;
  }, opts.neverBlock);
  const result = opts.signal ? await Promise.race([attempt, whenAborted(opts.signal).then(() => STILL_WORKING)]) : await attempt;
  if (confirmed) {
    s.rt.onResult?.(confirmed, hook, result.status);
    if (result.status === 'Failure') s.rt.onFailure?.(confirmed, hook, result.message ?? '');
  }
  return result;
}

/** BeforeClusterCreate blocks: without the CA copy and node script Secrets node bootstrap would hang; a Failure says what to do. */
async function beforeClusterCreate(s: Scope, request: LifecycleRequest): Promise<HookResult> {
  const claimed = await confirmClaim(s, 'BeforeClusterCreate', request, failure);
  return isHookResult(claimed) ? claimed : step(s, 'BeforeClusterCreate', claimed, setupCluster);
}

/**
 * ACPI and BCU never block: trouble is marked on the Cluster and handed to the background loop. Also
 * after a success the loop passes again soon: CAPI marks ACPI done with a merge patch computed from
 * the Cluster it read before calling us, which drops every annotation when its pending-hooks one was
 * the last, ours (written during the call) included.
 */
async function deployInBackground(s: Scope, hook: 'AfterControlPlaneInitialized' | 'BeforeClusterUpgrade', request: LifecycleRequest, ctx: HookContext, options: (cluster: ClusterRef) => DeployOptions): Promise<HookResult> {
  const claimed = await confirmClaim(s, hook, request, failure);
  if (isHookResult(claimed)) return claimed;
  return step(s, hook, claimed, (cluster, deps) => s.a.deploy(cluster, deps, options(cluster)), {
    signal: ctx.signal,
    then: async (cluster, deps, outcome) => {
      s.queue.retrySoon(cluster.namespace, cluster.name);
      return troubled(outcome) ? s.a.inBackground(cluster, hook, outcome, deps) : outcome;
    },
  });
}

/** BeforeClusterDelete holds deletion only while the registry's volumes go (bounded); anything else is a Success that says what went wrong. */
async function beforeClusterDelete(s: Scope, request: LifecycleRequest, ctx: HookContext): Promise<HookResult> {
  const claimed = await confirmClaim(s, 'BeforeClusterDelete', request, success);
  if (isHookResult(claimed)) return claimed;
  return step(s, 'BeforeClusterDelete', claimed, async (cluster, deps) => {
    s.queue.forget(cluster.namespace, cluster.name);
    s.rt.onGone?.(cluster.namespace, cluster.name);
    // The proxy first: CAAPH then uninstalls the release too, and never reinstalls it.
    const removed = await removeRegistry(cluster, deps);
    const volumes = await releaseRegistryVolumes(cluster, deps, ctx.signal);
    // The volumes needed the workload client again: drop it once more, or the cache keeps it for a deleted Cluster.
    deps.workloadClients.forget(cluster.namespace, kubeconfigSecret(cluster.name));
    return { ...volumes, message: [removed.message, volumes.message].filter(Boolean).join('; ') || undefined };
  }, { neverBlock: true });
}

/** GeneratePatches answers from the body alone, and asks the loop to converge the Cluster (opted in or not: an opt-out removes what we made). */
async function generatePatches(s: Scope, request: GeneratePatchesRequest): Promise<HookResult> {
  try {
    const items = patchesFor(request.variables, request.items);
    const cluster = patchedCluster(request.variables, request.items);
    if (cluster) s.queue.request(cluster.namespace, cluster.name, cluster.registry);
    return success(undefined, { items });
  } catch (err) {
    if (err instanceof RenderError) return failure(err.message);
    throw err;
  }
}

export function createAddon(rt: AddonRuntime): Addon {
  const a = attempts(rt);
  const loop = backgroundLoop(rt, a);
  const s: Scope = { rt, a, queue: loop.queue, confirmations: confirmer(rt.log) };
  return {
    handlers: {
      BeforeClusterCreate: (request) => beforeClusterCreate(s, request),
      AfterControlPlaneInitialized: (request, ctx) => deployInBackground(s, 'AfterControlPlaneInitialized', request, ctx, () => ({})),
      BeforeClusterUpgrade: (request: BeforeClusterUpgradeRequest, ctx) =>
        deployInBackground(s, 'BeforeClusterUpgrade', request, ctx, (cluster) => ({ upgradeTo: upgradeTarget(cluster, request.fields.toKubernetesVersion) })),
      BeforeClusterDelete: (request, ctx) => beforeClusterDelete(s, request, ctx),
      GeneratePatches: (request) => generatePatches(s, request),
      DiscoverVariables: async () => success(undefined, { variables: [clusterConfigVariable] }),
    },
    seed: (clusters) => loop.seed(clusters),
    clusterChanged: (namespace, name, raw) => loop.clusterChanged(namespace, name, raw),
    nudge: (namespace, name) => loop.queue.nudge(namespace, name),
    rebalance: () => loop.queue.rebalance(),
    stop: () => loop.queue.stop(),
  };
}
