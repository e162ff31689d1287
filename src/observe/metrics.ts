// A tiny Prometheus text-format registry: counters and fixed-bucket histograms with labels.
// Enough for per-hook request, failure and latency series without a dependency.

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels));

interface Series<T> { labels: Labels; value: T }

export class Counter {
  private readonly series = new Map<string, Series<number>>();
  /** `maxSeries`: past it, the series updated least recently is dropped (bounded memory and scrape size). */
  constructor(readonly name: string, readonly help: string, readonly maxSeries = Infinity) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const s = this.series.get(key);
    if (s) {
      s.value += by;
      // Map order is insertion order: re-inserting keeps the least recently updated first.
      this.series.delete(key);
      this.series.set(key, s);
      return;
    }
    this.series.set(key, { labels, value: by });
    while (this.series.size > this.maxSeries) this.series.delete(this.series.keys().next().value!);
  }
  /** Drops every series whose labels match (e.g. a deleted Cluster's). */
  remove(match: (labels: Labels) => boolean): void {
    for (const [key, s] of this.series) if (match(s.labels)) this.series.delete(key);
  }
  get size(): number {
    return this.series.size;
  }
  get(labels: Labels = {}): number {
    return this.series.get(keyOf(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const s of this.series.values()) lines.push(`${this.name}${labelText(s.labels)} ${s.value}`);
    return lines.join('\n');
  }
}

interface HistogramValue { buckets: number[]; sum: number; count: number }

export class Histogram {
  private readonly series = new Map<string, Series<HistogramValue>>();
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {}
  observe(labels: Labels, value: number): void {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, value: { buckets: this.bounds.map(() => 0), sum: 0, count: 0 } };
      this.series.set(key, s);
    }
    const v = s.value;
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) v.buckets[i]!++;
    v.sum += value;
    v.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, value } of this.series.values()) {
      this.bounds.forEach((le, i) => lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(le) })} ${value.buckets[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${value.count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${value.sum}`);
      lines.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
    return lines.join('\n');
  }
}

/** Room for 2,500 Clusters' hook outcomes; past that the least recently updated Cluster's series go first. */
export const MAX_CLUSTER_SERIES = 20_000;

/** Distinct source names in the source metrics' label. */
export const MAX_SOURCE_LABELS = 32;

/** The extension's metrics; one instance per server. */
export class HookMetrics {
  readonly requests = new Counter('capi_registry_addon_hook_requests_total', 'Hook requests answered, by hook and response status.');
  readonly failures = new Counter('capi_registry_addon_hook_failures_total', 'Hook requests answered with status Failure, by hook and reason.');
  readonly latency = new Histogram(
    'capi_registry_addon_hook_duration_seconds',
    'Time from request start to response, by hook.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  /**
   * Only Clusters the API server confirmed and that opted in (a hook body alone never makes a series),
   * removed when the Cluster goes, and bounded: 8 series per Cluster (4 hooks x 2 statuses).
   */
  readonly clusterResults = new Counter(
    'capi_registry_addon_cluster_hook_results_total',
    'Lifecycle hook answers per opted-in Cluster (namespace/name), by hook and response status.',
    MAX_CLUSTER_SERIES,
  );
  readonly chartRequests = new Counter('capi_registry_addon_chart_requests_total', 'Requests to the chart OCI endpoint (/v2/), by method (GET, HEAD or other) and HTTP status.');
  readonly shed = new Counter('capi_registry_addon_requests_shed_total', 'Requests answered 503 at once because the in-flight limit was reached.');
  readonly sourceImages = new Counter('capi_registry_addon_source_images_copied_total', 'Tags the writers copied from source registries, by source name (every Cluster\'s sources of that name together).');
  readonly sourceBytes = new Counter('capi_registry_addon_source_bytes_copied_total', 'Bytes of the images copied from source registries (configs and layers, every platform), by source name.');
  readonly sourceFailures = new Counter('capi_registry_addon_source_failures_total', 'Source passes that failed or had failed copies, by source name.');
  /** Source names seen, for a bounded label: past MAX_SOURCE_LABELS names the rest count as `other`. */
  readonly passes = new Counter('capi_registry_addon_background_passes_total', 'Background passes over a Cluster, by result status.');
  private readonly sourceNames = new Set<string>();
  /** One source pass the writer reported. */
  countSource(r: { source: string; copied: number; bytes: number; error: string }): void {
    if (!this.sourceNames.has(r.source) && this.sourceNames.size < MAX_SOURCE_LABELS) this.sourceNames.add(r.source);
    const labels = { source: this.sourceNames.has(r.source) ? r.source : 'other' };
    this.sourceImages.inc(labels, r.copied);
    this.sourceBytes.inc(labels, r.bytes);
    if (r.error) this.sourceFailures.inc(labels);
  }
  render(): string {
    return `${[this.requests.render(), this.failures.render(), this.latency.render(), this.clusterResults.render(), this.chartRequests.render(), this.shed.render(), this.sourceImages.render(), this.sourceBytes.render(), this.sourceFailures.render(), this.passes.render()].join('\n')}\n`;
  }
}

/** A gauge rendered from a fresh snapshot: label sets and values given whole on each render. */
export function renderGauge(name: string, help: string, samples: { labels: Labels; value: number }[]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...samples.map((s) => `${name}${labelText(s.labels)} ${s.value}`)].join('\n');
}
