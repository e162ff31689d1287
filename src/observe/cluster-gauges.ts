// Gauges per opted-in Cluster, read from the marks the addon keeps on it: when its registry's server
// certificate expires, whether its registry is deployed (0 while the background loop retries), its
// nodes by what they reported of the mirror, and the generation of its current credentials. The marks live on the Clusters, so a restarted or moved extension reports them at once;
// this module only lists the labelled Clusters, at most once per refresh interval per scrape.
import { CERT_NOT_AFTER_ANNOTATION, CLUSTER_SELECTOR_LABEL, CREDENTIALS_ANNOTATION, NODE_MIRROR_SUMMARY_ANNOTATION, REGISTRY_DEPLOYED, REGISTRY_STATUS_ANNOTATION } from '../render/helmchartproxy.ts';
import type { Logger } from './log.ts';
import { renderGauge } from './metrics.ts';

export interface ClusterGaugeOptions {
  /** Lists Clusters by label selector (all namespaces). */
  listClusters(labelSelector: string): Promise<Record<string, unknown>[]>;
  log: Logger;
  refreshMs?: number;
  now?: () => number;
}

const GAUGE = 'capi_registry_addon_registry_cert_expiry_timestamp_seconds';
const HELP = 'When the registry server certificate of a Cluster expires (Unix seconds), from the Cluster annotation ' + CERT_NOT_AFTER_ANNOTATION + '.';
const DEPLOYED_GAUGE = 'capi_registry_addon_registry_deployed';
const DEPLOYED_HELP = `1 when a Cluster's registry is deployed, 0 while capi-registry-addon retries (the reason is in the Cluster annotation ${REGISTRY_STATUS_ANNOTATION}).`;
const NODES_GAUGE = 'capi_registry_addon_node_mirror_nodes';
const NODES_HELP = `A Cluster's nodes by what they reported of the mirror (state enabled, not-enabled, unreported), from the Cluster annotation ${NODE_MIRROR_SUMMARY_ANNOTATION}.`;
const CREDENTIALS_GAUGE = 'capi_registry_addon_registry_credentials_generation';
const CREDENTIALS_HELP = `The generation of a Cluster's current registry credentials (1, then 2 after the first rotation, ...), from the Cluster annotation ${CREDENTIALS_ANNOTATION}.`;

export interface ClusterGauges {
  render(): Promise<string>;
  /** This process just wrote an expiry: list afresh on the next scrape. */
  invalidate(): void;
}

export function clusterGauges(opts: ClusterGaugeOptions): ClusterGauges {
  const refreshMs = opts.refreshMs ?? 30_000;
  const now = opts.now ?? Date.now;
  type Sample = { labels: Record<string, string>; value: number };
  let expiry: Sample[] = [];
  let deployed: Sample[] = [];
  let nodes: Sample[] = [];
  let credentials: Sample[] = [];
  let fetchedAt = -Infinity;
  let inflight: Promise<void> | undefined;
  const refresh = async () => {
    try {
      let timer: ReturnType<typeof setTimeout> | undefined;
      // A hung API server must not hang the scrape: give up after 5 s and keep the last values.
      const clusters = await Promise.race([
        opts.listClusters(CLUSTER_SELECTOR_LABEL),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('listing Clusters took over 5 s')), 5000))),
      ]).finally(() => clearTimeout(timer));
      const marked = clusters.flatMap((c) => {
        const meta = (c.metadata ?? {}) as { name?: string; namespace?: string; annotations?: Record<string, string> };
        return meta.name && meta.namespace ? [{ labels: { namespace: meta.namespace, cluster: meta.name }, annotations: meta.annotations ?? {} }] : [];
      });
      expiry = marked.flatMap(({ labels, annotations }) => {
        const at = Date.parse(annotations[CERT_NOT_AFTER_ANNOTATION] ?? '');
        return Number.isFinite(at) ? [{ labels, value: at / 1000 }] : [];
      });
      deployed = marked.flatMap(({ labels, annotations }) => {
        const status = annotations[REGISTRY_STATUS_ANNOTATION];
        return status === undefined ? [] : [{ labels, value: status === REGISTRY_DEPLOYED ? 1 : 0 }];
      });
      nodes = marked.flatMap(({ labels, annotations }) => Object.entries(parseSummary(annotations[NODE_MIRROR_SUMMARY_ANNOTATION])).map(([state, value]) => ({ labels: { ...labels, state }, value })));
      credentials = marked.flatMap(({ labels, annotations }) => {
        const user = annotations[CREDENTIALS_ANNOTATION]?.split(',')[0];
        return user && /^node(-\d+)?$/.test(user) ? [{ labels, value: Number(/-(\d+)$/.exec(user)?.[1] ?? 1) }] : [];
      });
      fetchedAt = now();
    } catch (err) {
      // Keep the last known values; the next scrape tries again.
      opts.log.warn('cannot list Clusters for the certificate expiry metric', { error: err instanceof Error ? err.message : String(err) });
    }
  };
  return {
    async render() {
      if (now() - fetchedAt >= refreshMs) await (inflight ??= refresh().finally(() => (inflight = undefined)));
      return [renderGauge(GAUGE, HELP, expiry), renderGauge(DEPLOYED_GAUGE, DEPLOYED_HELP, deployed), renderGauge(NODES_GAUGE, NODES_HELP, nodes), renderGauge(CREDENTIALS_GAUGE, CREDENTIALS_HELP, credentials)].join('\n');
    },
    invalidate() {
      fetchedAt = -Infinity;
    },
  };
}

/** `enabled=5,not-enabled=1,unreported=0` as numbers per state; anything else nothing. */
function parseSummary(text: string | undefined): Record<string, number> {
  const pairs = (text ?? '').split(',').map((p) => /^(enabled|not-enabled|unreported)=(\d{1,6})$/.exec(p));
  return pairs.every(Boolean) && pairs.length === 3 ? Object.fromEntries(pairs.map((m) => [m![1]!, Number(m![2])])) : {};
}
