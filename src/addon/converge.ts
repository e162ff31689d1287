// The background loop. A Cluster that opts in after creation never sees BeforeClusterCreate or
// AfterControlPlaneInitialized again; a registry that could not be deployed at ACPI must still come
// up; a certificate near expiry on a Cluster that is never upgraded must still be renewed. So every
// opted-in Cluster is converged here: when GeneratePatches or a hook asks (cheap, returns at once),
// again after a Failure (backing off from `retryMs` to `intervalMs`), and again every `intervalMs`
// while it stays opted in. Each Cluster runs at most once at a time, with a few running at once.
import type { Logger } from '../observe/log.ts';
import type { HookResult } from '../runtime-sdk/types.ts';

export interface ConvergeOutcome {
  result: HookResult;
  /** Keep converging this Cluster (it exists and is opted in); false forgets it until it is asked for again. */
  watch: boolean;
  /** What the API server says of the Cluster's registry settings, when the run read it (compared with what requests claim). */
  state?: string;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface ConvergeOptions {
  /** Converges one Cluster. */
  run(namespace: string, name: string): Promise<ConvergeOutcome>;
  log: Logger;
  /** After a success, the Cluster is left alone this long, then converged again. */
  intervalMs?: number;
  /** First retry after a Failure; each further Failure doubles it, up to `intervalMs`. */
  retryMs?: number;
  concurrency?: number;
  /** Most Clusters waiting at once: names come from GeneratePatches bodies, which anyone may send. */
  maxQueued?: number;
  now?: () => number;
  timers?: Timers;
  /** Whether this replica does the periodic passes for a Cluster (membership.ts); all of them when absent. */
  owns?: (key: string) => boolean;
  /** Told of every finished pass (metrics). */
  onPass?: (status: HookResult['status'] | 'Threw') => void;
  /** How soon a nudged Cluster runs (events come in bursts: one pass for a burst). */
  nudgeMs?: number;
  /** Least time between nudged passes of one Cluster (a pass's own writes come back as events). */
  nudgeGapMs?: number;
}

export interface Converger {
  /**
   * Asks for the Cluster to be converged soon; cheap, returns at once. `state` is what the caller saw
   * (e.g. the registry variable): a request whose state differs from what the last run read from the API
   * server is not held back by the interval, so an opt-in, a change or an opt-out is acted on at once.
   * A claimed change that the run then did not find (a forged body) earns no such run again for
   * `retryMs`: alternating claims cannot force back-to-back passes.
   */
  request(namespace: string, name: string, state?: string): void;
  /** Converge this (confirmed) Cluster again after the retry delay, whatever the interval says (a hook's attempt failed, or its marks may be lost). */
  retrySoon(namespace: string, name: string): void;
  /**
   * Something of the Cluster's changed or went (a watch event): its pass runs within `nudgeMs`, on the
   * replica that owns it, at most once per `nudgeGapMs`; during a pass, once more after it (the pass may
   * have read before the change).
   */
  nudge(namespace: string, name: string): void;
  /** Keeps an opted-in Cluster in the loop (from a list of them): its periodic passes start now, on the replica that owns it. No-op when already watched. */
  watch(namespace: string, name: string): void;
  /** The replicas changed: runs at once the watched Clusters this replica now owns and did not. */
  rebalance(): void;
  /** Resolves when nothing is queued or running (scheduled re-runs do not count). */
  idle(): Promise<void>;
  forget(namespace: string, name: string): void;
  /** Cancels every scheduled re-run (shutdown, tests). */
  stop(): void;
}

/** setTimeout that does not keep a process alive on its own (Node and Bun have unref; Deno's numbers do not need it). */
export const defaultTimers: Timers = {
  set(fn, ms) {
    const handle = setTimeout(fn, ms) as unknown as { unref?: () => void };
    handle.unref?.();
    return handle;
  },
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export function converger(opts: ConvergeOptions): Converger {
  const now = opts.now ?? Date.now;
  const timers = opts.timers ?? defaultTimers;
  const intervalMs = opts.intervalMs ?? 10 * 60_000;
  const retryMs = Math.min(opts.retryMs ?? 60_000, intervalMs);
  // Eight: a pass mostly waits on API servers, and a Cluster seen for the first time behind a hung one
  // holds its slot until the request timeout (bench:fleet, 5% frozen: 1.40x the healthy converge time with 4).
  const concurrency = opts.concurrency ?? 8;
  const maxQueued = opts.maxQueued ?? 10_000;
  const notBefore = new Map<string, number>();
  /** What the last run read of each Cluster's registry settings. */
  const lastState = new Map<string, string>();
  /** The state a request claimed when its change let it past the interval. */
  const claimed = new Map<string, string>();
  /** Until when claimed changes of a Cluster wait for the interval (a claim the API server did not bear out). */
  const doubted = new Map<string, number>();
  const failures = new Map<string, number>();
  const scheduled = new Map<string, unknown>();
  const queue: string[] = [];
  const active = new Set<string>();
  /** Watched Clusters another replica does the periodic passes for. */
  const notOurs = new Set<string>();
  const nudgeMs = opts.nudgeMs ?? 200;
  const nudgeGapMs = opts.nudgeGapMs ?? 1_000;
  /** When each Cluster's last nudged pass was due. */
  const nudged = new Map<string, number>();
  /** Clusters nudged during their pass: once more after it. */
  const again = new Set<string>();
  let waiters: (() => void)[] = [];

  const settle = () => {
    if (queue.length || active.size) return;
    for (const w of waiters) w();
    waiters = [];
  };
  const unschedule = (key: string) => {
    if (scheduled.has(key)) timers.clear(scheduled.get(key));
    scheduled.delete(key);
  };
  const enqueue = (key: string) => {
    unschedule(key);
    notOurs.delete(key);
    queue.push(key);
    pump();
  };
  /**
   * The next run of a watched Cluster; the timer is the only thing that remembers it. A periodic run
   * (`anyOwner` false) happens on the replica that owns the Cluster; the others look again after an
   * interval, or at once when the members change (rebalance). Retries after a Failure or a hook run
   * where they were asked for.
   */
  const schedule = (key: string, delayMs: number, anyOwner = false) => {
    unschedule(key);
    scheduled.set(key, timers.set(() => {
      scheduled.delete(key);
      if (active.has(key) || queue.includes(key)) return;
      if (!anyOwner && opts.owns && !opts.owns(key)) {
        notOurs.add(key);
        schedule(key, intervalMs);
        return;
      }
      enqueue(key);
    }, delayMs));
  };
  const finished = (key: string, outcome: ConvergeOutcome | undefined) => {
    const claim = claimed.get(key);
    claimed.delete(key);
    if (outcome?.state !== undefined) {
      lastState.set(key, outcome.state);
      if (claim !== undefined && claim !== outcome.state) doubted.set(key, now() + retryMs);
    }
    opts.onPass?.(outcome?.result.status ?? 'Threw');
    const failed = !outcome || outcome.result.status === 'Failure';
    const count = failed ? (failures.get(key) ?? 0) + 1 : 0;
    const delay = failed ? Math.min(retryMs * 2 ** Math.min(count - 1, 20), intervalMs) : intervalMs;
    notBefore.set(key, now() + delay);
    if (count) failures.set(key, count);
    else failures.delete(key);
    // A Failure is retried whatever `watch` says (it may have come before the Cluster could be read),
    // but unconfirmed names never hold more than `maxQueued` timers.
    if (again.delete(key)) schedule(key, nudgeMs, true);
    else if (outcome?.watch || (failed && scheduled.size < maxQueued)) schedule(key, delay, failed);
    else unschedule(key);
  };
  // Clusters whose last run failed (a hung workload API server holds a slot until the request timeout)
  // share at most this many slots, so a few broken Clusters cannot starve the fleet.
  const suspectSlots = Math.max(1, Math.floor(concurrency / 4));
  let activeSuspects = 0;
  const pump = () => {
    while (active.size < concurrency && queue.length) {
      const index = activeSuspects < suspectSlots ? 0 : queue.findIndex((k) => !failures.has(k));
      if (index < 0) return;
      const key = queue.splice(index, 1)[0]!;
      const suspect = failures.has(key);
      if (suspect) activeSuspects++;
      active.add(key);
      const [namespace, name] = key.split('/') as [string, string];
      opts
        .run(namespace, name)
        .then(
          (outcome) => {
            finished(key, outcome);
            const { status, message } = outcome.result;
            opts.log[status === 'Failure' ? 'warn' : 'debug']('background convergence', { cluster: key, status, message });
          },
          (err) => {
            finished(key, undefined);
            opts.log.error('background convergence threw', { cluster: key, error: err instanceof Error ? err.name : typeof err });
          },
        )
        .finally(() => {
          active.delete(key);
          if (suspect) activeSuspects--;
          pump();
          settle();
        });
    }
  };
  return {
    request(namespace, name, state) {
      const key = `${namespace}/${name}`;
      const changed = state !== undefined && lastState.has(key) && lastState.get(key) !== state && !((doubted.get(key) ?? 0) > now());
      if (active.has(key) || queue.includes(key) || (!changed && (notBefore.get(key) ?? 0) > now())) return;
      if (queue.length >= maxQueued) return; // CAPI calls GeneratePatches again; the Cluster gets its turn then
      // Remembered intervals that have passed say nothing any more: drop them so forged names do not pile up.
      if (notBefore.size >= maxQueued) {
        for (const [k, t] of notBefore) {
          if (t > now() || scheduled.has(k)) continue;
          notBefore.delete(k);
          lastState.delete(k);
          failures.delete(k);
          doubted.delete(k);
        }
      }
      if (changed) claimed.set(key, state);
      else if (state !== undefined && !lastState.has(key)) lastState.set(key, state);
      enqueue(key);
    },
    retrySoon(namespace, name) {
      const key = `${namespace}/${name}`;
      if (active.has(key) || queue.includes(key)) return;
      schedule(key, Math.min(retryMs * 2 ** Math.min(failures.get(key) ?? 0, 20), intervalMs), true);
    },
    nudge(namespace, name) {
      const key = `${namespace}/${name}`;
      if (opts.owns && !opts.owns(key)) return;
      if (active.has(key)) return void again.add(key);
      if (queue.includes(key)) return;
      const last = nudged.get(key);
      const due = Math.max(now() + nudgeMs, last === undefined ? 0 : last + nudgeGapMs);
      nudged.set(key, due);
      schedule(key, due - now(), true);
    },
    watch(namespace, name) {
      const key = `${namespace}/${name}`;
      if (active.has(key) || queue.includes(key) || scheduled.has(key) || scheduled.size >= maxQueued) return;
      schedule(key, 0);
    },
    rebalance() {
      for (const key of notOurs) {
        if (opts.owns?.(key) && !active.has(key) && !queue.includes(key)) enqueue(key);
      }
    },
    idle() {
      return new Promise((resolve) => {
        waiters.push(resolve);
        settle();
      });
    },
    forget(namespace, name) {
      const key = `${namespace}/${name}`;
      unschedule(key);
      notOurs.delete(key);
      notBefore.delete(key);
      lastState.delete(key);
      claimed.delete(key);
      doubted.delete(key);
      failures.delete(key);
      nudged.delete(key);
      again.delete(key);
    },
    stop() {
      for (const key of [...scheduled.keys()]) unschedule(key);
    },
  };
}
