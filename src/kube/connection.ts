// Finds the management cluster connection: --kubeconfig, else in-cluster, else $KUBECONFIG or
// ~/.kube/config. Finding none is not fatal: hooks for Clusters that have not opted in need no API
// access, so the server starts anyway and says what it is missing.
//
// Locating is cheap and done at start; @kubernetes/client-node is evaluated only when a client is
// first needed (client-node.ts), because it costs memory and time that a cold start should not pay.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { clientNode } from './client-node.ts';

export type KubeLocation =
  | { ok: true; kind: 'file'; source: string }
  | { ok: true; kind: 'in-cluster'; source: string }
  | { ok: false; reason: string };

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function locateKubeConfig(opts: { kubeconfig?: string; env: Record<string, string | undefined> }): KubeLocation {
  if (opts.kubeconfig) {
    return existsSync(opts.kubeconfig)
      ? { ok: true, kind: 'file', source: opts.kubeconfig }
      : { ok: false, reason: `--kubeconfig ${opts.kubeconfig} does not exist` };
  }
  if (opts.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) return { ok: true, kind: 'in-cluster', source: 'in-cluster service account' };
  const fromEnv = opts.env.KUBECONFIG?.split(':').find((p) => p && existsSync(p));
  const home = join(opts.env.HOME ?? homedir(), '.kube', 'config');
  const file = fromEnv ?? (existsSync(home) ? home : undefined);
  if (!file) return { ok: false, reason: 'no --kubeconfig, not in a cluster, and no $KUBECONFIG or ~/.kube/config' };
  return { ok: true, kind: 'file', source: file };
}

/** Loads a located kubeconfig; throws an operator-readable error. */
export async function loadKubeConfig(location: Extract<KubeLocation, { ok: true }>): Promise<KubeConfig> {
  const { KubeConfig } = clientNode();
  const kc = new KubeConfig();
  try {
    if (location.kind === 'in-cluster') kc.loadFromCluster();
    else kc.loadFromFile(location.source);
  } catch (err) {
    throw new Error(`kubeconfig ${location.source} could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${location.source} has no current context/cluster`);
  return kc;
}
