// The registry's whole life on the management side, one function per phase:
//   prepare (BeforeClusterCreate)     root CA + the Cluster's ca.crt copy
//   deploy  (ACPI, BCU, day 2)        prepare, workload Secrets, Cluster label, ONE HelmChartProxy
//   remove  (BeforeClusterDelete)     what we created in the management cluster (proxy, CA copy, credentials)
// Each converges: calling it again with the same input writes nothing new.
import { KubeError, type KubeClient } from '../kube/client.ts';
import type { WorkloadClients } from '../kube/workload-clients.ts';
import { helmChartProxy, helmChartProxyName, REGISTRY_DEPLOYED, type ChartSource } from '../render/helmchartproxy.ts';
import { GC_AT_POD_ANNOTATION } from '../render/workload.ts';
import { currentMarks, markCluster, type ClusterMarks } from './cluster-marks.ts';
import type { Credentials } from './credentials.ts';
import { nodeMirror, nodeMirrorFacts, nodeMirrorSummary } from '../observe/status.ts';
import { ROOT_CA_SECRET } from '../pki/root-ca.ts';
import { clusterCaSecretName, clusterIssuerSecretName, REGISTRY, nodeCredentialSecretName, nodeScriptSecretName, pushCredentialSecretName, rolloverRecordSecretName } from '../render/metadata.ts';
import { clusterApiVersionOf, failure, kubernetesTime, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import { registryPlan } from './plan.ts';
import { asHookResult, isHookResult, prepareCluster, type SetupDeps } from './setup.ts';
import { kubeconfigSecret, workloadClientFor, writeWorkloadSecrets } from './workload-secrets.ts';
import { reconcileStorage } from './storage.ts';
import { checkRelease } from './release-state.ts';
import { durationMs } from '../lib/duration.ts';
import { advanceRollover, machinesWithOldTrust } from './trust-rollover.ts';
import { gatherSourceFiles, readSourceProgress, writeSourcesSecret, type SourceFiles } from './sources.ts';
import type { SourceResult } from '../observe/source-progress.ts';
import type { SourceConfig } from '../render/sources.ts';

export interface AddonDeps extends SetupDeps {
  workloadClients: WorkloadClients;
  /** The chart source; caSecret defaults to the Cluster's CA copy (our manifests sign the extension with the root CA). */
  chart: { repoUrl: string; version: string; caSecret?: { name: string; namespace: string } };
  /** BeforeClusterDelete's bound on waiting for the registry's volumes (default VOLUME_RELEASE.timeoutMs). */
  volumeReleaseTimeoutMs?: number;
  /** Source passes the writer reported since the last count (metrics, Events); called once they are marked as counted. */
  onSourceResults?: (cluster: ClusterRef, results: SourceResult[]) => void;
}

const HCP_API_VERSION = 'addons.cluster.x-k8s.io/v1alpha1';

export interface DeployOptions {
  /** BeforeClusterUpgrade's target version: the registry gets a fresh certificate once per upgrade. */
  upgradeTo?: string;
}

/** ACPI, BCU and the background loop: everything the registry needs, converged. The message says what changed. */
export function deployRegistry(cluster: ClusterRef, deps: AddonDeps, opts: DeployOptions = {}): Promise<HookResult> {
  return asHookResult(cluster, async () => {
    // One workload client for the pass (CAPI's kubeconfig Secret read once).
    const workload = await workloadClientFor(cluster, deps);
    // registry-tls read once for the pass: the served chain says whether a trust rollover must start
    // (trust-rollover.ts), and the same read decides about renewal.
    let served: ReturnType<KubeClient['readSecret']> | undefined;
    const servedTls = () => (served ??= workload.readSecret(REGISTRY.namespace, REGISTRY.tlsSecret));
    const prepared = await prepareCluster(cluster, deps, async () => (await servedTls())?.data['tls.crt']);
    if (!prepared) return success();
    if (isHookResult(prepared)) return prepared;
    const { registry, signer, rollover, creds } = prepared;
    const apiVersion = clusterApiVersionOf(cluster, deps.clusterApiVersion);
    // A retried BeforeClusterUpgrade for the same version finds its mark and issues nothing new.
    const upgrade = opts.upgradeTo && currentMarks(cluster).certUpgrade !== opts.upgradeTo ? opts.upgradeTo : undefined;
    const oldTrust = rollover ? await machinesWithOldTrust(cluster, deps.management, apiVersion, rollover.since) : [];
    const secrets = await writeWorkloadSecrets(cluster, registry.layout, signer, deps, creds, { workload, servedTls, upgradeTo: upgrade, ...(oldTrust.length ? { keepSignedBy: rollover!.previous } : {}) });
    const sources = registry.config.sources ?? [];
    const sourceFiles = await gatherSourceFiles(cluster, sources, deps.management, deps.providerNamespace);
    const sourcesSha256 = await writeSourcesSecret(workload, sourceFiles, sources.length > 0);
    // A storage change the running StatefulSet cannot take is refused, and the running values rendered: everything else still goes.
    const storage = await reconcileStorage(workload, registry.config.storage);
    const rendered = { ...registry, config: { ...registry.config, storage: storage.storage } };
    // The deployed proxy remembers when collection was last due (what the pods carry); no second copy to drift.
    const deployedProxy = await deps.management.getObject({ apiVersion: HCP_API_VERSION, kind: 'HelmChartProxy', namespace: cluster.namespace, name: helmChartProxyName(cluster.name) });
    const gcAt = garbageCollectionDue(deployedGcAt(deployedProxy), registry.config.garbageCollection.interval, deps.now());
    const plan = await registryPlan(cluster, rendered, { tlsCertSha256: secrets.tlsCertSha256, authSha256: secrets.authSha256, gcAt, sourcesSha256 });
    // CAAPH verifies the chart server (signed by the root in the shipped manifests) against the root's ca.crt.
    const chart: ChartSource = { ...deps.chart, caSecret: deps.chart.caSecret ?? { name: ROOT_CA_SECRET, namespace: deps.providerNamespace } };
    const proxy = helmChartProxy({ cluster: { ...cluster, apiVersion }, chart, workload: plan.workload });
    // The label (with the certificate marks) first: a proxy that selects nothing yet is harmless, a label
    // without its proxy too. `Deployed` only once the proxy is applied.
    const certMarks = { notAfter: kubernetesTime(secrets.notAfter), ...(upgrade ? { certUpgrade: upgrade } : {}) };
    await markCluster(cluster, deps.management, deps.clusterApiVersion, certMarks);
    const changed = await deps.management.ensureObject(proxy as Parameters<KubeClient['ensureObject']>[0], deployedProxy);
    // A refused storage change is this attempt's answer (the Cluster is then marked Retrying with it, not Deployed).
    if (storage.refused) return failure(`Cluster ${cluster.namespace}/${cluster.name}: ${storage.refused}`);
    // A proxy just changed has not been acted on by CAAPH yet; otherwise its verdict on the release counts.
    const broken = changed ? undefined : await checkRelease(cluster, deps.management, helmChartProxyName(cluster.name));
    if (broken) return failure(`Cluster ${cluster.namespace}/${cluster.name}: ${broken}`);
    const progress = await sourceMarks(cluster, workload, sources, sourceFiles);
    await markCluster(cluster, deps.management, deps.clusterApiVersion, { ...certMarks, status: REGISTRY_DEPLOYED, ...(await reportedMarks(workload, creds)), ...progress.marks });
    if (progress.fresh.length) deps.onSourceResults?.(cluster, progress.fresh);
    const renewed = secrets.renewal.renew ? `registry-tls issued (${secrets.renewal.reasons.join('; ')}); ` : '';
    const trust = rollover
      ? await advanceRollover(cluster, { management: deps.management, providerNamespace: deps.providerNamespace, workload, clusterApiVersion: deps.clusterApiVersion, signer, tlsCrt: secrets.tlsCrt, rollover, oldTrust, issuedNow: secrets.renewal.renew })
      : '';
    const expanded = storage.done ? `${storage.done}; ` : '';
    // Say what this pass did: `applied` only when the proxy was written.
    return success(`${trust}${renewed}${expanded}HelmChartProxy ${cluster.namespace}/${helmChartProxyName(cluster.name)} ${changed ? 'applied' : 'unchanged'}`);
  });
}

/**
 * The current credentials, and what the nodes reported of the mirror (one Node list in the workload
 * cluster per pass: metadata only, in pages, each answer bounded; a list that fails keeps the last mark,
 * one too large to read says so).
 */
async function reportedMarks(workload: KubeClient, creds: Credentials | undefined): Promise<Partial<ClusterMarks>> {
  const credentials = creds ? `${creds.node.username},${creds.push.username}` : 'none (auth off)';
  try {
    const nodes = await workload.listMetadata({ apiVersion: 'v1', kind: 'Node' }, '', nodeMirrorFacts);
    return { credentials, nodeMirror: nodeMirrorSummary(nodeMirror(nodes)) };
  } catch (err) {
    if (err instanceof KubeError && err.status === 413) return { credentials, nodeMirror: `not counted: ${err.message}` };
    if (err instanceof KubeError) return { credentials };
    throw err;
  }
}

/**
 * What the writer's sidecar reported of the sources (its log, read once per pass); the marks drop away
 * with the last source. `fresh`: the passes not counted before (the mark keeps the newest counted).
 */
async function sourceMarks(cluster: ClusterRef, workload: KubeClient, sources: SourceConfig[], files: SourceFiles): Promise<{ marks: Partial<ClusterMarks>; fresh: SourceResult[] }> {
  if (!sources.length) return { marks: { sources: undefined, sourcesCountedUntil: undefined }, fresh: [] };
  const counted = Number(currentMarks(cluster).sourcesCountedUntil ?? 0);
  const progress = await readSourceProgress(workload, sources, files.problems, Number.isSafeInteger(counted) ? counted : 0);
  if (!progress) return { marks: {}, fresh: [] };
  return { marks: { sources: progress.mark, sourcesCountedUntil: String(progress.countedUntil) }, fresh: progress.fresh };
}

/** The garbage-collection time the deployed HelmChartProxy's StatefulSet carries, if any. */
function deployedGcAt(proxy: Record<string, unknown> | undefined): string | undefined {
  try {
    const values = JSON.parse(String((proxy?.spec as { valuesTemplate?: unknown } | undefined)?.valuesTemplate ?? '{}')) as { manifests?: { kind?: string; spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } }[] };
    return values.manifests?.find((m) => m.kind === 'StatefulSet')?.spec?.template?.metadata?.annotations?.[GC_AT_POD_ANNOTATION];
  } catch {
    return undefined;
  }
}

/**
 * When garbage collection is due: the last time it was (kept while the interval has not passed), else
 * now. The first deploy records now: its pods collect on empty volumes, which costs nothing. A last time
 * in the future (more than a minute of clock skew) is not a collection that happened: now, so no value
 * written into the proxy can turn collection off.
 */
export function garbageCollectionDue(last: string | undefined, interval: string, now: Date): string {
  const every = durationMs(interval) ?? 0;
  const lastMs = Date.parse(last ?? '');
  if (!Number.isNaN(lastMs) && lastMs <= now.getTime() + 60_000 && (every === 0 || now.getTime() - lastMs < every)) return last!;
  return kubernetesTime(now);
}

/**
 * BeforeClusterDelete: deletes the HelmChartProxy, the CA copy, the credential and node-script Secrets
 * and the Cluster's issuer. Never blocks: all but the issuer are owned by the Cluster, so when the API refuses, garbage
 * collection still removes them once the Cluster is gone.
 */
export async function removeRegistry(cluster: ClusterRef, deps: AddonDeps): Promise<HookResult> {
  deps.workloadClients.forget(cluster.namespace, kubeconfigSecret(cluster.name));
  const targets = [
    { apiVersion: HCP_API_VERSION, kind: 'HelmChartProxy', namespace: cluster.namespace, name: helmChartProxyName(cluster.name) },
    ...[clusterCaSecretName, nodeCredentialSecretName, pushCredentialSecretName, nodeScriptSecretName].map((name) => ({ apiVersion: 'v1', kind: 'Secret', namespace: cluster.namespace, name: name(cluster.name) })),
    // The issuer lives in the provider namespace: no owner reference can reach it, so it goes here.
    { apiVersion: 'v1', kind: 'Secret', namespace: deps.providerNamespace, name: await clusterIssuerSecretName(cluster.namespace, cluster.name) },
    { apiVersion: 'v1', kind: 'Secret', namespace: deps.providerNamespace, name: await rolloverRecordSecretName(cluster.namespace, cluster.name) },
  ];
  const problems: string[] = [];
  for (const ref of targets) {
    try {
      await deps.management.deleteObject(ref);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (!problems.length) return success();
  return success(`Cluster ${cluster.namespace}/${cluster.name}: deletion not held back, but ${problems.join('; ')}; owner references let garbage collection remove them with the Cluster`);
}

/**
 * A Cluster that opted out (no `addons.registry` any more, our label still on it): what BeforeClusterDelete
 * removes, then our label and annotation (server-side apply without them: we are their only manager).
 * Its GeneratePatches answer already carries no node files, so CAPI rolls its nodes without the mirror.
 */
export async function optOutRegistry(cluster: ClusterRef, deps: AddonDeps): Promise<HookResult> {
  const removed = await removeRegistry(cluster, deps);
  await deps.management.applyObject({ apiVersion: clusterApiVersionOf(cluster, deps.clusterApiVersion), kind: 'Cluster', metadata: { name: cluster.name, namespace: cluster.namespace } });
  return success(`opted out: HelmChartProxy, CA copy, issuer, credentials and node script removed${removed.message ? `; ${removed.message}` : ''}`);
}
