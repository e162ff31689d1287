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
  return new ConvergeQueue(opts);
}

class ConvergeQueue implements Converger {
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly intervalMs: number;
  private readonly retryMs: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly nudgeMs: number;
  private readonly nudgeGapMs: number;
  /** Clusters whose last run failed (a hung workload API server holds a slot until the request timeout) share at most this many slots, so a few broken Clusters cannot starve the fleet. */
  private readonly suspectSlots: number;
  private activeSuspects = 0;
  private readonly notBefore = new Map<string, number>();
  /** What the last run read of each Cluster's registry settings. */
  private readonly lastState = new Map<string, string>();
  /** The state a request claimed when its change let it past the interval. */
  private readonly claimed = new Map<string, string>();
  /** Until when claimed changes of a Cluster wait for the interval (a claim the API server did not bear out). */
  private readonly doubted = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly scheduled = new Map<string, unknown>();
  private readonly queue: string[] = [];
  private readonly active = new Set<string>();
  /** Watched Clusters another replica does the periodic passes for. */
  private readonly notOurs = new Set<string>();
  /** When each Cluster's last nudged pass was due. */
  private readonly nudged = new Map<string, number>();
  /** Clusters nudged during their pass: once more after it. */
  private readonly again = new Set<string>();
  private waiters: (() => void)[] = [];

  constructor(private readonly opts: ConvergeOptions) {
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? defaultTimers;
    this.intervalMs = opts.intervalMs ?? 10 * 60_000;
    this.retryMs = Math.min(opts.retryMs ?? 60_000, this.intervalMs);
    // Eight: a pass mostly waits on API servers, and a Cluster seen for the first time behind a hung one
    // holds its slot until the request timeout (bench:fleet, 5% frozen: 1.40x the healthy converge time with 4).
    this.concurrency = opts.concurrency ?? 8;
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.nudgeMs = opts.nudgeMs ?? 200;
    this.nudgeGapMs = opts.nudgeGapMs ?? 500;
    this.suspectSlots = Math.max(1, Math.floor(this.concurrency / 4));
  }

  private busy(key: string): boolean {
    return this.active.has(key) || this.queue.includes(key);
  }

  private settle(): void {
    if (this.queue.length || this.active.size) return;
    for (const w of this.waiters) w();
    this.waiters = [];
  }

  private unschedule(key: string): void {
    if (this.scheduled.has(key)) this.timers.clear(this.scheduled.get(key));
    this.scheduled.delete(key);
  }

  private enqueue(key: string): void {
    this.unschedule(key);
    this.notOurs.delete(key);
    this.queue.push(key);
    this.pump();
  }

  /**
   * The next run of a watched Cluster; the timer is the only thing that remembers it. A periodic run
   * (`anyOwner` false) happens on the replica that owns the Cluster; the others look again after an
   * interval, or at once when the members change (rebalance). Retries after a Failure or a hook run
   * where they were asked for.
   */
  private schedule(key: string, delayMs: number, anyOwner = false): void {
    this.unschedule(key);
    this.scheduled.set(key, this.timers.set(() => {
      this.scheduled.delete(key);
      if (this.busy(key)) return;
      if (!anyOwner && this.opts.owns && !this.opts.owns(key)) {
        this.notOurs.add(key);
        this.schedule(key, this.intervalMs);
        return;
      }
      this.enqueue(key);
    }, delayMs));
  }

  private finished(key: string, outcome: ConvergeOutcome | undefined): void {
    const claim = this.claimed.get(key);
    this.claimed.delete(key);
    if (outcome?.state !== undefined) {
      this.lastState.set(key, outcome.state);
      if (claim !== undefined && claim !== outcome.state) this.doubted.set(key, this.now() + this.retryMs);
    }
    this.opts.onPass?.(outcome?.result.status ?? 'Threw');
    const failed = !outcome || outcome.result.status === 'Failure';
    const count = failed ? (this.failures.get(key) ?? 0) + 1 : 0;
    const delay = failed ? Math.min(this.retryMs * 2 ** Math.min(count - 1, 20), this.intervalMs) : this.intervalMs;
    this.notBefore.set(key, this.now() + delay);
    if (count) this.failures.set(key, count);
    else this.failures.delete(key);
    // A Failure is retried whatever `watch` says (it may have come before the Cluster could be read),
    // but unconfirmed names never hold more than `maxQueued` timers.
    if (this.again.delete(key)) this.schedule(key, this.nudgeMs, true);
    else if (outcome?.watch || (failed && this.scheduled.size < this.maxQueued)) this.schedule(key, delay, failed);
    else this.unschedule(key);
  }

  private pump(): void {
    while (this.active.size < this.concurrency && this.queue.length) {
      const index = this.activeSuspects < this.suspectSlots ? 0 : this.queue.findIndex((k) => !this.failures.has(k));
      if (index < 0) return;
      this.start(this.queue.splice(index, 1)[0]!);
    }
  }

  private start(key: string): void {
    const suspect = this.failures.has(key);
    if (suspect) this.activeSuspects++;
    this.active.add(key);
    const [namespace, name] = key.split('/') as [string, string];
    this.opts
      .run(namespace, name)
      .then(
        (outcome) => {
          this.finished(key, outcome);
          const { status, message } = outcome.result;
          this.opts.log[status === 'Failure' ? 'warn' : 'debug']('background convergence', { cluster: key, status, message });
        },
        (err) => {
          this.finished(key, undefined);
          this.opts.log.error('background convergence threw', { cluster: key, error: err instanceof Error ? err.name : typeof err });
        },
      )
      .finally(() => {
        this.active.delete(key);
        if (suspect) this.activeSuspects--;
        this.pump();
        this.settle();
      });
  }

  /** Remembered intervals that have passed say nothing any more: dropped so forged names do not pile up. */
  private dropStale(): void {
    for (const [k, t] of this.notBefore) {
      if (t > this.now() || this.scheduled.has(k)) continue;
      this.notBefore.delete(k);
      this.lastState.delete(k);
      this.failures.delete(k);
      this.doubted.delete(k);
    }
  }

  request(namespace: string, name: string, state?: string): void {
    const key = `${namespace}/${name}`;
    const changed = state !== undefined && this.lastState.has(key) && this.lastState.get(key) !== state && !((this.doubted.get(key) ?? 0) > this.now());
    if (this.busy(key) || (!changed && (this.notBefore.get(key) ?? 0) > this.now())) return;
    if (this.queue.length >= this.maxQueued) return; // CAPI calls GeneratePatches again; the Cluster gets its turn then
    if (this.notBefore.size >= this.maxQueued) this.dropStale();
    if (changed) this.claimed.set(key, state);
    else if (state !== undefined && !this.lastState.has(key)) this.lastState.set(key, state);
    this.enqueue(key);
  }

  retrySoon(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.busy(key)) return;
    this.schedule(key, Math.min(this.retryMs * 2 ** Math.min(this.failures.get(key) ?? 0, 20), this.intervalMs), true);
  }

  nudge(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.opts.owns && !this.opts.owns(key)) return;
    if (this.active.has(key)) return void this.again.add(key);
    if (this.queue.includes(key)) return;
    const last = this.nudged.get(key);
    const due = Math.max(this.now() + this.nudgeMs, last === undefined ? 0 : last + this.nudgeGapMs);
    this.nudged.set(key, due);
    this.schedule(key, due - this.now(), true);
  }

  watch(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.busy(key) || this.scheduled.has(key) || this.scheduled.size >= this.maxQueued) return;
    this.schedule(key, 0);
  }

  rebalance(): void {
    for (const key of this.notOurs) {
      if (this.opts.owns?.(key) && !this.busy(key)) this.enqueue(key);
    }
  }

  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.settle();
    });
  }

  forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.unschedule(key);
    for (const state of [this.notOurs, this.notBefore, this.lastState, this.claimed, this.doubted, this.failures, this.nudged, this.again]) state.delete(key);
  }

  stop(): void {
    for (const key of [...this.scheduled.keys()]) this.unschedule(key);
  }
}
