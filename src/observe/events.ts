// Kubernetes Events on the Cluster for every Failure a lifecycle hook returns, so that
// `kubectl describe cluster` shows what the registry addon is waiting for. The same failure is
// recorded at most once per `quietMs` per Cluster (CAPI retries failing hooks often).
import { clusterApiVersionOf, kubernetesTime, type ClusterRef } from '../runtime-sdk/types.ts';
import type { Logger } from './log.ts';
import { redact } from './log.ts';

export interface EventSink {
  /** Writes one core/v1 Event object. */
  write(event: Record<string, unknown>): Promise<void>;
}

export interface FailureEvents {
  record(cluster: ClusterRef, hook: string, message: string): void;
}

export function failureEvents(opts: { sink: () => Promise<EventSink>; log: Logger; clusterApiVersion: string; quietMs?: number; now?: () => number }): FailureEvents {
  const quietMs = opts.quietMs ?? 5 * 60_000;
  const now = opts.now ?? Date.now;
  const last = new Map<string, number>();
  return {
    record(cluster, hook, message) {
      const key = `${cluster.namespace}/${cluster.name}|${hook}|${message}`;
      const t = now();
      if ((last.get(key) ?? -Infinity) > t - quietMs) return;
      last.set(key, t);
      if (last.size > 10_000) last.delete(last.keys().next().value!);
      const stamp = kubernetesTime(new Date(t));
      const event = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${cluster.name}.${t.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`, namespace: cluster.namespace },
        involvedObject: {
          apiVersion: clusterApiVersionOf(cluster, opts.clusterApiVersion),
          kind: 'Cluster', name: cluster.name, namespace: cluster.namespace, ...(cluster.uid ? { uid: cluster.uid } : {}),
        },
        reason: `RegistryAddon${hook}Failed`,
        message: redact(message).slice(0, 1024),
        type: 'Warning',
        source: { component: 'capi-registry-addon' },
        reportingComponent: 'capi-registry-addon',
        firstTimestamp: stamp,
        lastTimestamp: stamp,
        count: 1,
      };
      // Best effort, off the hook's path: an Event that cannot be written must not change the answer.
      void opts.sink().then((s) => s.write(event)).catch((err: unknown) =>
        opts.log.warn('cannot record an Event on the Cluster', { cluster: `${cluster.namespace}/${cluster.name}`, error: err instanceof Error ? err.message : String(err) }));
    },
  };
}
