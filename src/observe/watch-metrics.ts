// What the management watch caches did: reads answered from them and from the API server (steady state:
// only the former grows), and per cache the lists, watch events and objects held.
import type { ManagementWatches } from '../addon/background/watches.ts';
import { renderGauge } from './metrics.ts';

const counter = (name: string, help: string, samples: { labels: Record<string, string>; value: number }[]) =>
  renderGauge(name, help, samples).replace(`# TYPE ${name} gauge`, `# TYPE ${name} counter`);

export function watchMetrics(w: Pick<ManagementWatches, 'client' | 'counts'>): string {
  const caches = Object.entries(w.counts());
  return [
    counter('capi_registry_addon_management_reads_total', 'Management reads by the hooks and the background loop, by where they were answered (cache or api).', [
      { labels: { from: 'cache' }, value: w.client.reads.cached },
      { labels: { from: 'api' }, value: w.client.reads.direct },
    ]),
    counter('capi_registry_addon_watch_lists_total', 'Full lists each watch cache made (its first, and after a watch could not resume).', caches.map(([cache, c]) => ({ labels: { cache }, value: c.lists }))),
    counter('capi_registry_addon_watch_events_total', 'Changes each watch cache received.', caches.map(([cache, c]) => ({ labels: { cache }, value: c.events }))),
    renderGauge('capi_registry_addon_watch_objects', 'Objects each watch cache holds.', caches.map(([cache, c]) => ({ labels: { cache }, value: c.held }))),
  ].join('\n');
}
