// `status`: per opted-in Cluster, whether its registry is there and sound, read from the management API
// server (and each workload API server through CAPI's kubeconfig Secret). Reads only.
import { clusterRegistry } from '../addon/layout.ts';
import { listReleases } from '../addon/release-state.ts';
import { workloadClientFor } from '../addon/workload-secrets.ts';
import { KubeError, kubeClient, type KubeClient } from '../kube/client.ts';
import { loadKubeConfig, locateKubeConfig } from '../kube/connection.ts';
import { workloadClientCache, type WorkloadClients } from '../kube/workload-clients.ts';
import { clusterStatus, nodeMirrorFacts, statusTable, type ClusterStatus } from '../observe/status.ts';
import { CLUSTER_SELECTOR_LABEL, helmChartProxyName } from '../render/helmchartproxy.ts';
import { nodeCredentialSecretName, pushCredentialSecretName, STATEFULSET_REF } from '../render/metadata.ts';
import { parseCluster } from '../runtime-sdk/request.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { UsageError, type CommandSpec, type ParsedFlags } from './args.ts';

export const STATUS: CommandSpec = {
  name: 'status',
  summary: 'Per opted-in Cluster: registry deployed and Ready, Helm release, nodes using the mirror, certificate expiry, current credentials (CAPI v1.11+).',
  flags: [
    { name: 'kubeconfig', value: 'FILE', help: 'management cluster kubeconfig; else in-cluster, else $KUBECONFIG or ~/.kube/config' },
    { name: 'namespace', value: 'NS', help: 'only the Clusters of this namespace' },
    { name: 'cluster', value: 'NAME', help: 'only this Cluster (with --namespace)' },
    { name: 'output', value: 'table|json', help: 'output format (-o)', default: 'table' },
  ],
};

/** `status` exits 3 when a Cluster is not healthy, so scripts and CI can gate on it. */
export const UNHEALTHY_EXIT = 3;

const reason = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function orError<T>(read: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof KubeError) return { error: err.message };
    throw err;
  }
}

/** Clusters looked at at once: a fleet of hundreds answers in seconds, and an unreachable workload API server (15 s timeout) holds up only its own row. */
const CONCURRENCY = 8;

/** The status of every opted-in Cluster the management client sees (optionally one namespace or one Cluster), in the listed order. */
export async function gatherStatus(management: KubeClient, opts: { namespace?: string; cluster?: string; now?: () => Date } = {}): Promise<ClusterStatus[]> {
  const listed = await management.listObjects({ apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', ...(opts.namespace ? { namespace: opts.namespace } : {}) }, CLUSTER_SELECTOR_LABEL);
  const clusters = listed.flatMap((raw) => {
    const parsed = parseCluster(raw);
    return parsed.ok && (!opts.cluster || parsed.value.name === opts.cluster) ? [parsed.value] : [];
  });
  const workloadClients = workloadClientCache();
  const rows: ClusterStatus[] = new Array(clusters.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < clusters.length; i = next++) rows[i] = await statusOf(clusters[i]!, management, workloadClients, opts.now?.() ?? new Date());
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, clusters.length) }, worker));
  return rows;
}

async function statusOf(cluster: ClusterRef, management: KubeClient, workloadClients: WorkloadClients, now: Date): Promise<ClusterStatus> {
  let authEnabled = true;
  try {
    authEnabled = clusterRegistry(cluster)?.config.auth.enabled ?? true;
  } catch {
    // An invalid clusterConfig: the addon's own mark says so.
  }
  const secret = async (name: string) => (await management.readSecret(cluster.namespace, name))?.data;
  const workload = await orError(() => workloadClientFor(cluster, { management, workloadClients }));
  return clusterStatus({
    namespace: cluster.namespace,
    name: cluster.name,
    annotations: ((cluster.raw.metadata ?? {}) as { annotations?: Record<string, string> }).annotations ?? {},
    releases: await orError(() => listReleases(management, cluster.namespace, helmChartProxyName(cluster.name))),
    authEnabled,
    credentials: await orError(async () => ({ node: await secret(nodeCredentialSecretName(cluster.name)), push: await secret(pushCredentialSecretName(cluster.name)) })),
    statefulSet: 'error' in workload ? workload : await orError(() => workload.getObject(STATEFULSET_REF)),
    nodes: 'error' in workload ? workload : await orError(() => workload.listMetadata({ apiVersion: 'v1', kind: 'Node' }, '', nodeMirrorFacts)),
    now,
  });
}

export async function status(flags: ParsedFlags): Promise<{ text: string; healthy: boolean }> {
  const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  if (flags.output !== 'table' && flags.output !== 'json') throw new UsageError('--output must be table or json');
  if (str('cluster') && !str('namespace')) throw new UsageError('--cluster needs --namespace');
  const kube = locateKubeConfig({ kubeconfig: str('kubeconfig'), env: process.env });
  if (!kube.ok) throw new UsageError(`no management cluster connection: ${kube.reason}`);
  let rows: ClusterStatus[];
  try {
    rows = await gatherStatus(await kubeClient(await loadKubeConfig(kube)), { namespace: str('namespace'), cluster: str('cluster') });
  } catch (err) {
    throw new KubeError(`cannot list the opted-in Clusters: ${reason(err)}`);
  }
  const healthy = rows.every((r) => r.healthy);
  if (flags.output === 'json') return { text: `${JSON.stringify(rows, null, 2)}\n`, healthy };
  return { text: rows.length ? statusTable(rows) : `no opted-in Cluster (label ${CLUSTER_SELECTOR_LABEL})${str('namespace') ? ` in ${str('namespace')}` : ''}\n`, healthy };
}
