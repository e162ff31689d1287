// The background loop: every Cluster that is ours is converged here (converge.ts schedules the passes).
// A pass reads the Cluster (from the watch cache), then deploys after initialization, prepares before
// it, or removes what we made once the Cluster opted out. Watch events feed it: a new or changed Cluster
// of ours, and a change to anything of ours beside a Cluster, run that Cluster's pass at once.
import { KubeError } from '../../kube/client.ts';
import { CLUSTER_SELECTOR_LABEL } from '../../render/helmchartproxy.ts';
import { parseCluster } from '../../runtime-sdk/request.ts';
import { failure, success, type ClusterRef } from '../../runtime-sdk/types.ts';
import { troubled, type AddonRuntime, type Attempts } from '../attempts.ts';
import { converger, type ConvergeOutcome, type Converger } from '../converge.ts';
import { optOutRegistry, type AddonDeps } from '../deploy.ts';
import { registryOptIn, registryState } from '../opt-in.ts';
import { setupCluster } from '../setup.ts';

type Stored = Record<string, unknown>;

/** Cluster status in both shapes: v1beta2 `initialization.controlPlaneInitialized`, v1beta1 `controlPlaneReady` or the condition. */
export function controlPlaneInitialized(raw: Stored): boolean {
  const status = (raw.status ?? {}) as Record<string, any>;
  if (status.initialization?.controlPlaneInitialized === true || status.controlPlaneReady === true) return true;
  const conditions = [...(status.conditions ?? []), ...(status.v1beta2?.conditions ?? [])];
  return conditions.some((c: any) => c?.type === 'ControlPlaneInitialized' && c?.status === 'True');
}

const labelsOf = (raw: Stored) => ((raw.metadata ?? {}) as { labels?: Record<string, string> }).labels ?? {};

/** A Cluster as the loop sees it, from one parse: the Cluster and its opt-in (or why it does not parse), whether it is ours, its fingerprint. */
interface Seen {
  read: { ok: true; cluster: ClusterRef; optIn: ReturnType<typeof registryOptIn> } | { ok: false; message: string };
  /**
   * The one "is it ours" check: a Cluster the loop keeps converging is opted in (or its opt-in does not
   * parse: a typo must not remove a registry), or still carries our label (it opted out: what we made goes).
   */
  ours: boolean;
  /** What about the Cluster makes a pass worth running at once when it changes (not our own marks). */
  print: string;
}

export function seeCluster(raw: Stored): Seen {
  const parsed = parseCluster(raw);
  const labelled = CLUSTER_SELECTOR_LABEL in labelsOf(raw);
  const meta = (raw.metadata ?? {}) as { uid?: unknown; deletionTimestamp?: unknown };
  const version = ((raw.spec ?? {}) as { topology?: { version?: unknown } }).topology?.version;
  const print = (state: string) => JSON.stringify([state, labelled, controlPlaneInitialized(raw), meta.uid, meta.deletionTimestamp, version]);
  if (!parsed.ok) return { read: { ok: false, message: parsed.message }, ours: false, print: print('unparsed') };
  const optIn = registryOptIn(parsed.value.variables);
  return { read: { ok: true, cluster: parsed.value, optIn }, ours: optIn.enabled !== false || labelled, print: print(registryState(optIn)) };
}

/** One pass over one Cluster: read it, then prepare, deploy or (opted out) remove what we made. */
async function convergeCluster(rt: AddonRuntime, a: Attempts, namespace: string, name: string): Promise<ConvergeOutcome> {
  let deps: AddonDeps;
  let raw: Stored | undefined;
  try {
    deps = await rt.deps();
    raw = await deps.management.getObject({ apiVersion: deps.clusterApiVersion, kind: 'Cluster', namespace, name });
  } catch (err) {
    if (err instanceof KubeError) return { result: failure(`Cluster ${namespace}/${name}: ${err.message}`), watch: false };
    throw err;
  }
  if (!raw || (raw.metadata as Stored | undefined)?.deletionTimestamp) {
    rt.onGone?.(namespace, name);
    return { result: success(), watch: false };
  }
  const { read, ours } = seeCluster(raw);
  if (!read.ok) return { result: failure(`Cluster ${namespace}/${name}: ${read.message}`), watch: false };
  const { cluster, optIn } = read;
  const state = registryState(optIn);
  if (!ours) return { result: success(), watch: false, state };
  if (optIn.enabled === false) {
    rt.onGone?.(namespace, name);
    return { result: await a.withDeps(cluster, (d) => optOutRegistry(cluster, d)), watch: false, state };
  }
  const result = await a.withDeps(cluster, async (d, waited) => {
    // Another step held the Cluster's lock (a hook): it may have changed the Cluster's marks, which this
    // pass writes back whole; read it again (the cached client reads a Cluster it just wrote from the API server).
    const current = waited ? parseCluster(await (d.live ?? d.management).getObject({ apiVersion: d.clusterApiVersion, kind: 'Cluster', namespace, name })) : { ok: true as const, value: cluster };
    if (!current.ok) return success();
    const initialized = controlPlaneInitialized(current.value.raw);
    const attempt = optIn.enabled === 'invalid' ? failure(`Cluster ${namespace}/${name}: ${optIn.message}`) : initialized ? await a.deploy(current.value, d) : await setupCluster(current.value, d);
    // Before initialization the hooks (BCC) speak for the Cluster; after it, the marks do.
    return initialized && troubled(attempt) ? { ...(await a.inBackground(current.value, 'Converge', attempt, d)), status: 'Failure' as const } : attempt;
  });
  return { result, watch: true, state };
}

export interface BackgroundLoop {
  queue: Converger;
  /** Puts every Cluster of ours into the loop (from the watch cache's first list). Returns how many. */
  seed(clusters: Stored[]): number;
  /** The Cluster cache saw a Cluster appear, change or go. */
  clusterChanged(namespace: string, name: string, raw: Stored | undefined): void;
}

export function backgroundLoop(rt: AddonRuntime, a: Attempts): BackgroundLoop {
  /** Each Cluster's fingerprint as last seen, and whether it was ours. */
  const seen = new Map<string, { print: string; ours: boolean }>();

  const queue = converger({ log: rt.log, intervalMs: rt.convergeIntervalMs, run: (namespace, name) => convergeCluster(rt, a, namespace, name), ...(rt.owns ? { owns: rt.owns } : {}), ...(rt.onPass ? { onPass: rt.onPass } : {}) });

  return {
    queue,
    seed(clusters) {
      let seeded = 0;
      for (const raw of clusters) {
        const meta = (raw.metadata ?? {}) as { namespace?: string; name?: string };
        if (!meta.namespace || !meta.name) continue;
        const { print, ours } = seeCluster(raw);
        seen.set(`${meta.namespace}/${meta.name}`, { print, ours });
        if (!ours) continue;
        queue.watch(meta.namespace, meta.name);
        seeded++;
      }
      return seeded;
    },
    clusterChanged(namespace, name, raw) {
      const key = `${namespace}/${name}`;
      const before = seen.get(key);
      if (!raw) {
        seen.delete(key);
        if (before?.ours) queue.nudge(namespace, name);
        return;
      }
      const { print, ours } = seeCluster(raw);
      const now = { print, ours };
      seen.set(key, now);
      if (before?.print === now.print || (!before?.ours && !now.ours)) return;
      if (!before?.ours) queue.watch(namespace, name);
      queue.nudge(namespace, name);
    },
  };
}
