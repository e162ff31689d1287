// Clients for workload clusters, built from CAPI's `<cluster>-kubeconfig` Secrets and cached by that
// Secret's resourceVersion: a rotated kubeconfig (new resourceVersion) gets a new client, an unchanged
// one reuses the parsed config and its connection pool across hooks.
import { clientFromKubeconfig, type KubeClient } from './client.ts';
import type { WorkloadKubeconfig } from './workload-kubeconfig.ts';

export interface WorkloadClients<C = WorkloadKubeconfig> {
  /** The client for the (checked) kubeconfig stored in Secret `namespace/name` at `resourceVersion`. */
  get(key: { namespace: string; name: string; resourceVersion: string }, kubeconfig: C): Promise<KubeClient>;
  /** Forgets a cluster's client (its Cluster is being deleted). */
  forget(namespace: string, name: string): void;
}

export function workloadClientCache<C = WorkloadKubeconfig>(opts: { max?: number; build?: (kubeconfig: C) => Promise<KubeClient> } = {}): WorkloadClients<C> {
  const max = opts.max ?? 1000;
  const build = opts.build ?? (clientFromKubeconfig as unknown as (kubeconfig: C) => Promise<KubeClient>);
  // Map keeps insertion order: re-inserting on use makes the first entry the least recently used.
  const cache = new Map<string, { resourceVersion: string; client: Promise<KubeClient> }>();
  return {
    get(key, kubeconfig) {
      const id = `${key.namespace}/${key.name}`;
      const hit = cache.get(id);
      cache.delete(id);
      if (hit && hit.resourceVersion === key.resourceVersion && key.resourceVersion) {
        cache.set(id, hit);
        return hit.client;
      }
      const client = build(kubeconfig);
      // A kubeconfig that fails to parse is not cached: the next call reports it again.
      client.catch(() => cache.get(id)?.client === client && cache.delete(id));
      cache.set(id, { resourceVersion: key.resourceVersion, client });
      while (cache.size > max) cache.delete(cache.keys().next().value!);
      return client;
    },
    forget(namespace, name) {
      cache.delete(`${namespace}/${name}`);
    },
  };
}
