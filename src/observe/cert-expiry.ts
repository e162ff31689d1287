// The expiry gauge of every registry server certificate the extension manages. The dates live on the
// Clusters (an annotation written at ACPI/BCU), so a restarted or moved extension reports them at
// once; this module only lists the labelled Clusters, at most once per refresh interval per scrape.
import { CERT_NOT_AFTER_ANNOTATION, CLUSTER_SELECTOR_LABEL } from '../render/helmchartproxy.ts';
import type { Logger } from './log.ts';
import { renderGauge } from './metrics.ts';

export interface CertExpiryOptions {
  /** Lists Clusters by label selector (all namespaces). */
  listClusters(labelSelector: string): Promise<Record<string, unknown>[]>;
  log: Logger;
  refreshMs?: number;
  now?: () => number;
}

const GAUGE = 'capi_registry_addon_registry_cert_expiry_timestamp_seconds';
const HELP = 'When the registry server certificate of a Cluster expires (Unix seconds), from the Cluster annotation ' + CERT_NOT_AFTER_ANNOTATION + '.';

export interface CertExpiryMetrics {
  render(): Promise<string>;
  /** This process just wrote an expiry: list afresh on the next scrape. */
  invalidate(): void;
}

export function certExpiryMetrics(opts: CertExpiryOptions): CertExpiryMetrics {
  const refreshMs = opts.refreshMs ?? 30_000;
  const now = opts.now ?? Date.now;
  let samples: { labels: Record<string, string>; value: number }[] = [];
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
      samples = clusters.flatMap((c) => {
        const meta = (c.metadata ?? {}) as { name?: string; namespace?: string; annotations?: Record<string, string> };
        const at = Date.parse(meta.annotations?.[CERT_NOT_AFTER_ANNOTATION] ?? '');
        return Number.isFinite(at) && meta.name && meta.namespace ? [{ labels: { namespace: meta.namespace, cluster: meta.name }, value: at / 1000 }] : [];
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
      return renderGauge(GAUGE, HELP, samples);
    },
    invalidate() {
      fetchedAt = -Infinity;
    },
  };
}
