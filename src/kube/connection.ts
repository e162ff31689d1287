// Finds the management cluster connection: --kubeconfig, else in-cluster, else $KUBECONFIG or
// ~/.kube/config. Finding none is not fatal: hooks for Clusters that have not opted in need no API
// access, so the server starts anyway and says what it is missing.
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type KubeConnection =
  | { ok: true; source: string; kubeConfig: KubeConfig; server: string }
  | { ok: false; reason: string };

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function findKubeConnection(opts: { kubeconfig?: string; env: Record<string, string | undefined> }): KubeConnection {
  const kc = new KubeConfig();
  try {
    let source: string;
    if (opts.kubeconfig) {
      if (!existsSync(opts.kubeconfig)) return { ok: false, reason: `--kubeconfig ${opts.kubeconfig} does not exist` };
      kc.loadFromFile(opts.kubeconfig);
      source = opts.kubeconfig;
    } else if (opts.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
      kc.loadFromCluster();
      source = 'in-cluster service account';
    } else {
      const fromEnv = opts.env.KUBECONFIG?.split(':').find((p) => p && existsSync(p));
      const home = join(opts.env.HOME ?? homedir(), '.kube', 'config');
      const file = fromEnv ?? (existsSync(home) ? home : undefined);
      if (!file) return { ok: false, reason: 'no --kubeconfig, not in a cluster, and no $KUBECONFIG or ~/.kube/config' };
      kc.loadFromFile(file);
      source = file;
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) return { ok: false, reason: `kubeconfig ${source} has no current context/cluster` };
    return { ok: true, source, kubeConfig: kc, server: cluster.server };
  } catch (err) {
    return { ok: false, reason: `kubeconfig could not be loaded: ${err instanceof Error ? err.message : String(err)}` };
  }
}
