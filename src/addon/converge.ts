// Day 2: a Cluster that opts in after creation never sees BeforeClusterCreate or
// AfterControlPlaneInitialized again, but CAPI calls GeneratePatches for it on every topology
// reconcile. GeneratePatches itself stays pure and fast; it only asks this queue to converge the
// Cluster in the background: read the Cluster, make its CA copy (nodes need it to boot), and once its
// control plane is initialized, deploy the registry. Each Cluster runs at most once at a time and at
// most once per interval, with a small number running at once.
import type { Logger } from '../observe/log.ts';
import type { HookResult } from '../runtime-sdk/types.ts';

export interface ConvergeOptions {
  /** Converges one Cluster; a Failure is logged and retried after `retryMs`. */
  run(namespace: string, name: string): Promise<HookResult>;
  log: Logger;
  /** After a success, the Cluster is left alone this long. */
  intervalMs?: number;
  retryMs?: number;
  concurrency?: number;
  /** Most Clusters waiting at once: names come from GeneratePatches bodies, which anyone may send. */
  maxQueued?: number;
  now?: () => number;
}

export interface Converger {
  /**
   * Asks for the Cluster to be converged soon; cheap, returns at once. `state` is what the caller saw
   * (e.g. the registry variable): a request with a state other than the last one's is not held back by
   * the interval, so an opt-in, a change or an opt-out is acted on at once without any timer.
   */
  request(namespace: string, name: string, state?: string): void;
  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void>;
  forget(namespace: string, name: string): void;
}

export function converger(opts: ConvergeOptions): Converger {
  const now = opts.now ?? Date.now;
  const intervalMs = opts.intervalMs ?? 10 * 60_000;
  const retryMs = opts.retryMs ?? 60_000;
  const concurrency = opts.concurrency ?? 4;
  const maxQueued = opts.maxQueued ?? 10_000;
  const notBefore = new Map<string, number>();
  const lastState = new Map<string, string | undefined>();
  const queue: string[] = [];
  const active = new Set<string>();
  let waiters: (() => void)[] = [];

  const settle = () => {
    if (queue.length || active.size) return;
    for (const w of waiters) w();
    waiters = [];
  };
  const pump = () => {
    while (active.size < concurrency && queue.length) {
      const key = queue.shift()!;
      active.add(key);
      const [namespace, name] = key.split('/') as [string, string];
      opts
        .run(namespace, name)
        .then(
          (result) => {
            const failed = result.status === 'Failure';
            notBefore.set(key, now() + (failed ? retryMs : intervalMs));
            opts.log[failed ? 'warn' : 'debug']('day-2 convergence', { cluster: key, status: result.status, message: result.message });
          },
          (err) => {
            notBefore.set(key, now() + retryMs);
            opts.log.error('day-2 convergence threw', { cluster: key, error: err instanceof Error ? err.name : typeof err });
          },
        )
        .finally(() => {
          active.delete(key);
          pump();
          settle();
        });
    }
  };
  return {
    request(namespace, name, state) {
      const key = `${namespace}/${name}`;
      const changed = lastState.has(key) && lastState.get(key) !== state;
      if (active.has(key) || queue.includes(key) || (!changed && (notBefore.get(key) ?? 0) > now())) return;
      if (queue.length >= maxQueued) return; // CAPI calls GeneratePatches again; the Cluster gets its turn then
      // Remembered intervals that have passed say nothing any more: drop them so forged names do not pile up.
      if (notBefore.size >= maxQueued) {
        for (const [k, t] of notBefore) {
          if (t > now()) continue;
          notBefore.delete(k);
          lastState.delete(k);
        }
      }
      lastState.set(key, state);
      queue.push(key);
      pump();
    },
    idle() {
      return new Promise((resolve) => {
        waiters.push(resolve);
        settle();
      });
    },
    forget(namespace, name) {
      notBefore.delete(`${namespace}/${name}`);
      lastState.delete(`${namespace}/${name}`);
    },
  };
}
