// The decision of a deploy pass (ACPI, BCU, the background loop), with no I/O: from the facts gathered
// (gather.ts) it returns the HelmChartProxy to apply, the marks to write before and after it, the
// source results to report, and the answer. Every rule about what a pass does lives here, tested by
// named cases (test/unit/decide.test.ts); apply.ts only writes what this returns.
import { holds } from '../../kube/client.ts';
import { durationMs } from '../../lib/duration.ts';
import type { SourceResult } from '../../observe/source-progress.ts';
import { helmChartProxy, helmChartProxyName, REGISTRY_DEPLOYED, type ChartSource } from '../../render/helmchartproxy.ts';
import type { RegistryConfig } from '../../render/config.ts';
import type { RegistryLayout } from '../../render/metadata.ts';
import { workloadManifests } from '../../render/workload.ts';
import { failure, kubernetesTime, success, type ClusterRef, type HookResult } from '../../runtime-sdk/types.ts';
import type { ClusterMarks } from '../cluster-marks.ts';

type Stored = Record<string, unknown>;

export interface DeployFacts {
  cluster: ClusterRef;
  /** The Cluster's apiVersion as the management cluster serves it (the proxy's clusterRef). */
  clusterApiVersion: string;
  now: Date;
  /** The marks the Cluster carries now. */
  marks: Partial<ClusterMarks>;
  /** The version BeforeClusterUpgrade asked for (already checked against the Cluster's own). */
  upgradeTo?: string;
  layout: RegistryLayout;
  config: RegistryConfig;
  chart: ChartSource;
  /** What the workload Secrets step did: the served certificate and whether it was issued now. */
  secrets: { tlsCertSha256: string; authSha256?: string; notAfter: Date; renewal: { renew: boolean; reasons: string[] } };
  sourcesSha256?: string;
  /** The storage the running StatefulSet can take, and what it refused or did. */
  storage: { storage: RegistryConfig['storage']; refused?: string; done?: string };
  /** The HelmChartProxy as deployed now (undefined: none). */
  deployedProxy?: Stored;
  /** The collection time the deployed proxy's pods carry: read only for a Cluster without the gcAt mark (deployed by an older release). */
  legacyGcAt?: string;
  /** CAAPH's report of a failed release for this Cluster, if any. */
  releaseFailure?: string;
  /** What the workload cluster reported this pass: the credentials and the nodes' mirror summary. */
  reported: Partial<ClusterMarks>;
  /** The source marks and the source passes not counted before (undefined: the log could not be read; the marks stay). */
  sources?: { marks: Partial<ClusterMarks>; fresh: SourceResult[] };
}

export interface DeployDecision {
  /** Written first: the label and the certificate marks (a label without its proxy is harmless). */
  certMarks: Partial<ClusterMarks>;
  proxy: Stored;
  /** Whether the proxy differs from the deployed one (then it is applied). */
  proxyChanged: boolean;
  /** Written after the proxy when the pass succeeded. */
  doneMarks?: Partial<ClusterMarks>;
  /** Source passes to count (metrics, Events) once the marks that record them are written. */
  report: SourceResult[];
  result: HookResult;
}

/**
 * When garbage collection is due: the last time it was (kept while the interval has not passed), else
 * now. The first deploy records now: its pods collect on empty volumes, which costs nothing. A last time
 * in the future (more than a minute of clock skew) is not a collection that happened: now, so no value
 * written on the Cluster can turn collection off.
 */
export function garbageCollectionDue(last: string | undefined, interval: string, now: Date): string {
  const every = durationMs(interval) ?? 0;
  const lastMs = Date.parse(last ?? '');
  if (!Number.isNaN(lastMs) && lastMs <= now.getTime() + 60_000 && (every === 0 || now.getTime() - lastMs < every)) return last!;
  return kubernetesTime(now);
}

export async function decideDeploy(f: DeployFacts): Promise<DeployDecision> {
  const id = `Cluster ${f.cluster.namespace}/${f.cluster.name}`;
  const gcAt = garbageCollectionDue(f.marks.gcAt ?? f.legacyGcAt, f.config.garbageCollection.interval, f.now);
  const config = { ...f.config, storage: f.storage.storage };
  const workload = await workloadManifests({ layout: f.layout, config, tlsCertSha256: f.secrets.tlsCertSha256, authSha256: f.secrets.authSha256, gcAt, sourcesSha256: f.sourcesSha256 });
  const proxy = helmChartProxy({ cluster: { ...f.cluster, apiVersion: f.clusterApiVersion }, chart: f.chart, workload });
  const proxyChanged = !(f.deployedProxy && holds(f.deployedProxy, proxy));
  // A retried BeforeClusterUpgrade for the same version finds its mark and issues nothing new.
  const certMarks: Partial<ClusterMarks> = { notAfter: kubernetesTime(f.secrets.notAfter), gcAt, ...(f.upgradeTo ? { certUpgrade: f.upgradeTo } : {}) };
  const undone = (message: string): DeployDecision => ({ certMarks, proxy, proxyChanged, report: [], result: failure(`${id}: ${message}`) });
  // A refused storage change is this attempt's answer (the Cluster is then marked Retrying with it, not Deployed).
  if (f.storage.refused) return undone(f.storage.refused);
  // CAAPH's failure stands until it reports again: the proxy is still applied (undone keeps it), but a
  // changed proxy is not a deployed release (see releaseFailure).
  if (f.releaseFailure) return undone(f.releaseFailure);
  const renewed = f.secrets.renewal.renew ? `registry-tls issued (${f.secrets.renewal.reasons.join('; ')}); ` : '';
  const expanded = f.storage.done ? `${f.storage.done}; ` : '';
  return {
    certMarks, proxy, proxyChanged,
    doneMarks: { ...certMarks, status: REGISTRY_DEPLOYED, ...f.reported, ...f.sources?.marks },
    report: f.sources?.fresh ?? [],
    // Say what this pass did: `applied` only when the proxy is written.
    result: success(`${renewed}${expanded}HelmChartProxy ${f.cluster.namespace}/${helmChartProxyName(f.cluster.name)} ${proxyChanged ? 'applied' : 'unchanged'}`),
  };
}
