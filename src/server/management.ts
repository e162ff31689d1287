// The management-cluster side of `serve`: the connection (made on first use, so client-node's load cost
// stays out of cold start), read through the watch caches when the background loop runs, and the loop's
// start: member Leases, then the Clusters from the cache's first list, then the watch events.
import process from 'node:process';
import type { Addon } from '../addon/hooks.ts';
import { managementWatches, type ManagementWatches } from '../addon/background/watches.ts';
import type { AddonDeps } from '../addon/deploy.ts';
import { leaseMembership, type Membership } from '../addon/membership.ts';
import { passMemory } from '../addon/pass/memory.ts';
import { KubeError, kubeClient } from '../kube/client.ts';
import { loadKubeConfig, locateKubeConfig, type KubeLocation } from '../kube/connection.ts';
import { workloadClientCache } from '../kube/workload-clients.ts';
import { hexFromBytes } from '../lib/bytes.ts';
import type { ServeConfig } from './serve.ts';

export interface ManagementSide {
  kube: KubeLocation;
  clusterApiVersion: string;
  /** The addon's dependencies; rejects with a KubeError (said again on the next call) without a connection. */
  deps(): Promise<AddonDeps>;
  /** The watch caches, once the connection is made (none with --no-seed). */
  watches(): ManagementWatches | undefined;
}

export function managementSide(config: ServeConfig, onSourceResults: AddonDeps['onSourceResults']): ManagementSide {
  const { log } = config;
  const kube = locateKubeConfig({ kubeconfig: config.kubeconfig, env: process.env });
  if (kube.ok) log.info('management cluster kubeconfig', { source: kube.source });
  else log.warn('no management cluster connection: hooks for opted-in Clusters will fail until one is configured', { reason: kube.reason });
  const clusterApiVersion = config.target.minor <= 10 ? 'cluster.x-k8s.io/v1beta1' : 'cluster.x-k8s.io/v1beta2';
  let deps: Promise<AddonDeps> | undefined;
  let watches: ManagementWatches | undefined;
  const connect = async (location: Extract<KubeLocation, { ok: true }>): Promise<AddonDeps> => {
    const direct = await kubeClient(await loadKubeConfig(location));
    // With the background loop on, the management side is read through watch caches (one list, then events).
    if (config.addon.seed) watches ??= managementWatches(direct, { providerNamespace: config.addon.providerNamespace, clusterApiVersion, onError: (message) => log.warn(message) });
    return {
      management: watches?.client ?? direct,
      live: direct,
      workloadClients: workloadClientCache(),
      memory: passMemory(),
      providerNamespace: config.addon.providerNamespace,
      mintRootCa: config.addon.mintRootCa,
      clusterApiVersion,
      ...(config.addon.images ? { images: config.addon.images } : {}),
      ...(config.addon.defaultSource ? { defaultSource: config.addon.defaultSource } : {}),
      ...(onSourceResults ? { onSourceResults } : {}),
      chart: { repoUrl: config.addon.chartRepoUrl, version: config.version, caSecret: config.addon.chartCaSecret },
      ...(config.addon.volumeReleaseTimeoutSeconds ? { volumeReleaseTimeoutMs: config.addon.volumeReleaseTimeoutSeconds * 1000 } : {}),
      now: () => new Date(),
    };
  };
  return {
    kube,
    clusterApiVersion,
    watches: () => watches,
    deps() {
      if (!kube.ok) return Promise.reject(new KubeError(`no management cluster connection (${kube.reason}): run the extension in the management cluster or give --kubeconfig`));
      deps ??= connect(kube);
      // A kubeconfig that failed to load is reported on this call and tried again on the next.
      return deps.catch((err: unknown) => {
        deps = undefined;
        throw new KubeError(err instanceof Error ? err.message : String(err));
      });
    },
  };
}

/** The replicas' shared state for the loop: who owns which Cluster (membership.ts). */
export interface Background {
  members(): Membership | undefined;
  stop(): Promise<void>;
}

/**
 * Starts the background loop: this replica's member Lease (on the uncached client: its own cadence),
 * then every Cluster of ours from the Cluster cache's first list (not at CAPI's next resync), then the
 * watch events. Without a connection yet: tried again in 60 s.
 */
export function startBackground(side: ManagementSide, addon: Addon, config: ServeConfig): Background {
  const { log } = config;
  let members: Membership | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const seed = async (): Promise<void> => {
    try {
      await side.deps();
    } catch (err) {
      log.warn('cannot reach the management cluster for the background loop; trying again in 60 s', { error: err instanceof Error ? err.message : String(err) });
      timer = setTimeout(() => void seed(), 60_000);
      return;
    }
    const w = side.watches()!;
    await w.whenSynced();
    log.info('background loop seeded', { clusters: addon.seed(w.clusters.list()), replicas: members?.members().length ?? 1 });
    w.clusters.onChange((e) => addon.clusterChanged(e.namespace, e.name, e.type === 'DELETED' ? undefined : e.object));
    w.onOwnedChange((cluster) => addon.nudge(cluster.namespace, cluster.name));
  };
  const identity = `${process.env.POD_NAME ?? 'replica'}-${hexFromBytes(crypto.getRandomValues(new Uint8Array(4)))}`;
  void side.deps()
    .then(async ({ management }) => {
      members = leaseMembership({ client: side.watches()?.direct ?? management, namespace: config.addon.providerNamespace, identity, log, onChange: () => addon.rebalance() });
      await members.start();
    })
    .catch((err: unknown) => log.warn('background loop runs alone: no member Lease', { error: err instanceof Error ? err.message : String(err) }))
    .finally(() => void seed());
  return {
    members: () => members,
    async stop() {
      clearTimeout(timer);
      side.watches()?.stop();
      await members?.stop();
    },
  };
}
