// The registry's whole life on the management side, one function per phase:
//   prepare (BeforeClusterCreate)     root CA + the Cluster's ca.crt copy
//   deploy  (ACPI, BCU, day 2)        prepare, workload Secrets, Cluster label, ONE HelmChartProxy
//   remove  (BeforeClusterDelete)     what we created in the management cluster (proxy, CA copy, credentials)
// Each converges: calling it again with the same input writes nothing new.
import { KubeError, type KubeClient } from '../kube/client.ts';
import type { WorkloadClients } from '../kube/workload-clients.ts';
import { helmChartProxyName } from '../render/helmchartproxy.ts';
import { GC_AT_POD_ANNOTATION } from '../render/workload.ts';
import { currentMarks, markCluster, type ClusterMarks } from './cluster-marks.ts';
import type { Credentials } from './credentials.ts';
import { nodeMirror, nodeMirrorFacts, nodeMirrorSummary } from '../observe/status.ts';
import { ROOT_CA_SECRET } from '../pki/root-ca.ts';
import { clusterCaSecretName, clusterIssuerSecretName, REGISTRY, nodeCredentialSecretName, nodeScriptSecretName, pushCredentialSecretName, rolloverRecordSecretName } from '../render/metadata.ts';
import { clusterApiVersionOf, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import { asHookResult, isHookResult, prepareCluster, type Prepared, type SetupDeps } from './setup.ts';
import { kubeconfigSecret, workloadClientFor, writeWorkloadSecrets, type WorkloadSecretsResult } from './workload-secrets.ts';
import { reconcileStorage } from './storage.ts';
import { checkRelease } from './release-state.ts';
import { advanceRollover, machinesWithOldTrust } from './trust-rollover.ts';
import { gatherSourceFiles, readSourceProgress, writeSourcesSecret, type SourceFiles } from './sources.ts';
import type { SourceResult } from '../observe/source-progress.ts';
import type { SourceConfig } from '../render/sources.ts';
import { decideDeploy, type DeployDecision, type DeployFacts } from './pass/decide.ts';
import { readsNeeded, rememberAfter, type PassMemory, type Remembered } from './pass/memory.ts';
import { listedSecrets } from '../kube/listed-secrets.ts';

/** The type of Helm's release records, which CAAPH's installs leave in the registry's namespace (large; never read by us). */
const HELM_RELEASE_SECRET_TYPE = 'helm.sh/release.v1';

export interface AddonDeps extends SetupDeps {
  workloadClients: WorkloadClients;
  /** The chart source; caSecret defaults to the Cluster's CA copy (our manifests sign the extension with the root CA). */
  chart: { repoUrl: string; version: string; caSecret?: { name: string; namespace: string } };
  /** BeforeClusterDelete's bound on waiting for the registry's volumes (default VOLUME_RELEASE.timeoutMs). */
  volumeReleaseTimeoutMs?: number;
  /** Source passes the writer reported since the last count (metrics, Events); called once they are marked as counted. */
  onSourceResults?: (cluster: ClusterRef, results: SourceResult[]) => void;
  /** What this replica remembers of each Cluster's last pass (none: every pass reads everything). */
  memory?: PassMemory;
}

const HCP_API_VERSION = 'addons.cluster.x-k8s.io/v1alpha1';

export interface DeployOptions {
  /** BeforeClusterUpgrade's target version: the registry gets a fresh certificate once per upgrade. */
  upgradeTo?: string;
}

/**
 * ACPI, BCU and the background loop: everything the registry needs, converged, in three steps: gather
 * the facts (preparing the CA and credentials and converging the workload Secrets on the way: their
 * outcome is a fact), decide (pass/decide.ts, no I/O), apply what was decided. The message says what changed.
 */
export function deployRegistry(cluster: ClusterRef, deps: AddonDeps, opts: DeployOptions = {}): Promise<HookResult> {
  return asHookResult(cluster, async () => {
    const gathered = await gatherDeploy(cluster, deps, opts);
    if (!gathered) return success();
    if (isHookResult(gathered)) return gathered;
    const decision = await decideDeploy(gathered.facts);
    return applyDeploy(cluster, deps, gathered, decision);
  });
}

interface Gathered {
  facts: DeployFacts;
  workload: KubeClient;
  prepared: Prepared;
  secrets: WorkloadSecretsResult;
  oldTrust: string[];
  /** What the next pass may take as read, once this one succeeded (pass/memory.ts). */
  remember: Remembered;
}

/** Every fact a deploy pass decides on. Management reads come from the watch caches. */
async function gatherDeploy(cluster: ClusterRef, deps: AddonDeps, opts: DeployOptions): Promise<Gathered | HookResult | undefined> {
  const remembered = deps.memory?.recall(cluster) ?? {};
  // One workload client for the pass (CAPI's kubeconfig Secret read once), and one list of the registry's
  // Secrets (Helm's release records left out) that answers every Secret read of the pass.
  const listing = workloadClientFor(cluster, deps).then((client) => listedSecrets(client, REGISTRY.namespace, { fieldSelector: `type!=${HELM_RELEASE_SECRET_TYPE}` }));
  listing.catch(() => undefined); // awaited below; a failure is the pass's answer from there
  // The management side does not wait for the workload API server: a node that joins while that server
  // hangs (a control plane being replaced) still needs the CA copy, node script and credentials. Only
  // the served chain (whether a trust rollover must start, trust-rollover.ts) comes from the listing.
  const prepared = await prepareCluster(cluster, deps, async () => (await (await listing).client.readSecret(REGISTRY.namespace, REGISTRY.tlsSecret))?.data['tls.crt']);
  if (!prepared || isHookResult(prepared)) return prepared;
  const listed = await listing;
  const workload = listed.client;
  const { registry, signer, rollover, creds } = prepared;
  const apiVersion = clusterApiVersionOf(cluster, deps.clusterApiVersion);
  const marks = currentMarks(cluster);
  // A retried BeforeClusterUpgrade for the same version finds its mark and issues nothing new.
  const upgradeTo = opts.upgradeTo && marks.certUpgrade !== opts.upgradeTo ? opts.upgradeTo : undefined;
  const oldTrust = rollover ? await machinesWithOldTrust(cluster, deps.management, apiVersion, rollover.since) : [];
  const secrets = await writeWorkloadSecrets(cluster, registry.layout, signer, deps, creds, { workload, namespaceExists: listed.any, upgradeTo, ...(oldTrust.length ? { keepSignedBy: rollover!.previous } : {}) });
  const sources = registry.config.sources ?? [];
  const sourceFiles = await gatherSourceFiles(cluster, sources, deps.management, deps.providerNamespace);
  const sourcesSha256 = await writeSourcesSecret(workload, sourceFiles, sources.length > 0);
  // Left out when the last pass's answer still holds (pass/memory.ts): the running storage, the node count.
  const reads = readsNeeded(remembered, cluster.raw, registry.config.storage, marks.nodeMirror);
  const storage = reads.storage ? await reconcileStorage(workload, registry.config.storage) : { storage: registry.config.storage };
  const reported = await reportedMarks(workload, creds, reads.nodes);
  const proxyName = helmChartProxyName(cluster.name);
  const deployedProxy = await deps.management.getObject({ apiVersion: HCP_API_VERSION, kind: 'HelmChartProxy', namespace: cluster.namespace, name: proxyName });
  const facts: DeployFacts = {
    cluster, clusterApiVersion: apiVersion, now: deps.now(), marks, ...(upgradeTo ? { upgradeTo } : {}),
    layout: registry.layout, config: registry.config,
    // CAAPH verifies the chart server (signed by the root in the shipped manifests) against the root's ca.crt.
    chart: { ...deps.chart, caSecret: deps.chart.caSecret ?? { name: ROOT_CA_SECRET, namespace: deps.providerNamespace } },
    secrets, sourcesSha256, storage, deployedProxy,
    // Clusters deployed before the gcAt mark: the time their pods carry, once (the mark keeps it from then on).
    ...(marks.gcAt ? {} : { legacyGcAt: deployedGcAt(deployedProxy) }),
    releaseFailure: await checkRelease(cluster, deps.management, proxyName),
    reported: reported.marks,
    sources: await sourceMarks(cluster, workload, sources, sourceFiles),
  };
  return { facts, workload, prepared, secrets, oldTrust, remember: rememberAfter(remembered, reads, registry.config.storage, storage, { ...reported, mark: reported.marks.nodeMirror }) };
}

/** Writes what was decided: the label and certificate marks, the proxy, then (on success) the marks that say so. */
async function applyDeploy(cluster: ClusterRef, deps: AddonDeps, g: Gathered, d: DeployDecision): Promise<HookResult> {
  await markCluster(cluster, deps.management, deps.clusterApiVersion, d.certMarks);
  if (d.proxyChanged) await deps.management.applyObject(d.proxy as Parameters<KubeClient['applyObject']>[0]);
  // What the reads found holds whatever the verdict (a release CAAPH keeps failing is not a reason to
  // count the Nodes every pass); a node-mirror mark this pass did not write, when it differs from the
  // remembered one, has the Nodes counted again (readsNeeded).
  deps.memory?.keep(cluster, g.remember);
  if (d.result.status !== 'Success' || !d.doneMarks) return d.result;
  await markCluster(cluster, deps.management, deps.clusterApiVersion, d.doneMarks);
  if (d.report.length) deps.onSourceResults?.(cluster, d.report);
  const { rollover, signer } = g.prepared;
  const trust = rollover
    ? await advanceRollover(cluster, { management: deps.management, providerNamespace: deps.providerNamespace, workload: g.workload, clusterApiVersion: deps.clusterApiVersion, signer, tlsCrt: g.secrets.tlsCrt, rollover, oldTrust: g.oldTrust, issuedNow: g.secrets.renewal.renew })
    : '';
  return { ...d.result, message: `${trust}${d.result.message ?? ''}` };
}

/**
 * The current credentials, and what the nodes reported of the mirror when `count` (one Node list in the
 * workload cluster: metadata only, in pages, each answer bounded; a list that fails keeps the last mark,
 * one too large to read says so). `allMirrored`: every node listed reported the mirror enabled.
 */
async function reportedMarks(workload: KubeClient, creds: Credentials | undefined, count: boolean): Promise<{ marks: Partial<ClusterMarks>; allMirrored?: boolean }> {
  const credentials = creds ? `${creds.node.username},${creds.push.username}` : 'none (auth off)';
  if (!count) return { marks: { credentials } };
  try {
    const mirror = nodeMirror(await workload.listMetadata({ apiVersion: 'v1', kind: 'Node' }, '', nodeMirrorFacts));
    return { marks: { credentials, nodeMirror: nodeMirrorSummary(mirror) }, allMirrored: mirror.enabled === mirror.nodes };
  } catch (err) {
    if (err instanceof KubeError && err.status === 413) return { marks: { credentials, nodeMirror: `not counted: ${err.message}` } };
    if (err instanceof KubeError) return { marks: { credentials } };
    throw err;
  }
}

/**
 * What the writer's sidecar reported of the sources (its log, read once per pass); the marks drop away
 * with the last source. `fresh`: the passes not counted before (the mark keeps the newest counted).
 */
async function sourceMarks(cluster: ClusterRef, workload: KubeClient, sources: SourceConfig[], files: SourceFiles): Promise<{ marks: Partial<ClusterMarks>; fresh: SourceResult[] } | undefined> {
  if (!sources.length) return { marks: { sources: undefined, sourcesCountedUntil: undefined, sourcesFailing: undefined }, fresh: [] };
  const counted = Number(currentMarks(cluster).sourcesCountedUntil ?? 0);
  const progress = await readSourceProgress(workload, sources, files.problems, Number.isSafeInteger(counted) ? counted : 0);
  if (!progress) return undefined;
  return { marks: { sources: progress.mark, sourcesCountedUntil: String(progress.countedUntil), sourcesFailing: progress.failing.join(',') || undefined }, fresh: progress.fresh };
}

/** The garbage-collection time an older release's HelmChartProxy carries in its StatefulSet, if any (read once per Cluster, for the gcAt mark). */
function deployedGcAt(proxy: Record<string, unknown> | undefined): string | undefined {
  try {
    const values = JSON.parse(String((proxy?.spec as { valuesTemplate?: unknown } | undefined)?.valuesTemplate ?? '{}')) as { manifests?: { kind?: string; spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } }[] };
    return values.manifests?.find((m) => m.kind === 'StatefulSet')?.spec?.template?.metadata?.annotations?.[GC_AT_POD_ANNOTATION];
  } catch {
    return undefined;
  }
}

export { garbageCollectionDue } from './pass/decide.ts';

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
