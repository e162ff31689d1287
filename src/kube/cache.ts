// List+watch caches of management objects (the informer pattern, small): one list, then a watch from
// its resourceVersion, kept up to date event by event; a watch the server ends is resumed where it
// stopped, one that is too old (410 Gone) or fails is replaced by a fresh list, whose differences with
// what was held are told as events too (nothing changed in the gap goes unseen). Only what a selector
// picks is sent, and only what `keep` returns is held: the background loop reads from here, so a pass
// over a Cluster in steady state sends no request to the management API server.
import type { KindRef, KubeClient, Selectors } from './client.ts';
import { KubeError } from './errors.ts';

export type Stored = Record<string, unknown>;

export interface CacheSpec {
  ref: KindRef;
  selectors: Selectors;
  /** What is held of an object; undefined: not held (the selector could not narrow it enough). Default: all but managedFields. */
  keep?: (object: Stored) => Stored | undefined;
}

export interface CacheEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  namespace: string;
  name: string;
  /** The object held now; for DELETED the last one held (its labels say whose it was). */
  object: Stored;
}

export interface ObjectCache {
  readonly spec: CacheSpec;
  /** Whether the first list is in: before it, a miss means nothing. */
  synced(): boolean;
  /** Resolves once the first list is in. */
  whenSynced(): Promise<void>;
  /** A copy of the object held (callers may change it), or undefined. */
  get(namespace: string, name: string): Stored | undefined;
  /** The resourceVersion of the object held (no copy made), or undefined. */
  version(namespace: string, name: string): string | undefined;
  /** Copies of the objects held, in a namespace or all, matching an equality/existence label selector. */
  list(namespace?: string, labelSelector?: string): Stored[];
  /** Called for every change after it is held. */
  onChange(listener: (event: CacheEvent) => void): void;
  /** Lists and watches done since the start (the bench and tests read them). */
  counts(): { lists: number; watches: number; events: number; held: number };
  stop(): void;
}

export interface CacheOptions {
  /** How long one watch lasts before the server ends it (and it is resumed). */
  watchSeconds?: number;
  /** First pause after a failed list or watch; doubled per failure up to 30 s. */
  retryMs?: number;
  pageSize?: number;
  /** The longest event line read (an object is at most ~1.5 MiB in etcd; base64 and JSON add a third). */
  maxEventBytes?: number;
  onError?: (message: string) => void;
}

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
const metaOf = (o: Stored) => (o.metadata ?? {}) as { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; managedFields?: unknown };

/** The default `keep`: everything but managedFields (often the largest part, never read). */
export function withoutManagedFields(object: Stored): Stored {
  const { managedFields: _dropped, ...metadata } = metaOf(object);
  return { ...object, metadata };
}

/** Whether labels match a selector of `k=v`, `k==v`, `k!=v`, `k` and `!k` terms (what our callers use). */
export function labelsMatch(labels: Record<string, string> | undefined, selector: string | undefined): boolean {
  if (!selector) return true;
  const have = labels ?? {};
  return selector.split(',').map((t) => t.trim()).filter(Boolean).every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term);
    if (ne) return have[ne[1]!.trim()] !== ne[2]!.trim();
    const eq = /^([^!=]+)==?(.*)$/.exec(term);
    if (eq) return have[eq[1]!.trim()] === eq[2]!.trim();
    if (term.startsWith('!')) return !(term.slice(1) in have);
    return term in have;
  });
}

const pause = (ms: number) => new Promise<void>((resolve) => {
  const handle = setTimeout(resolve, ms) as unknown as { unref?: () => void };
  handle.unref?.();
});

export function objectCache(client: Pick<KubeClient, 'listPage' | 'watch'>, spec: CacheSpec, opts: CacheOptions = {}): ObjectCache {
  const keep = spec.keep ?? withoutManagedFields;
  const watchSeconds = opts.watchSeconds ?? 300;
  const maxEventBytes = opts.maxEventBytes ?? 4 * 1024 * 1024;
  const held = new Map<string, Stored>();
  const listeners: ((e: CacheEvent) => void)[] = [];
  const counts = { lists: 0, watches: 0, events: 0 };
  let resourceVersion = '';
  let isSynced = false;
  let stopped = false;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let resolveSynced!: () => void;
  const syncedPromise = new Promise<void>((resolve) => (resolveSynced = resolve));

  const tell = (event: CacheEvent) => {
    counts.events++;
    for (const l of listeners) {
      try {
        l(event);
      } catch (err) {
        opts.onError?.(`a cache listener threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  const put = (object: Stored) => {
    const { namespace = '', name = '' } = metaOf(object);
    const kept = keep(object);
    const key = keyOf(namespace, name);
    const had = held.has(key);
    if (!kept) {
      const last = held.get(key);
      if (last && held.delete(key)) tell({ type: 'DELETED', namespace, name, object: last });
      return;
    }
    held.set(key, kept);
    tell({ type: had ? 'MODIFIED' : 'ADDED', namespace, name, object: kept });
  };
  const remove = (object: Stored) => {
    const { namespace = '', name = '' } = metaOf(object);
    const last = held.get(keyOf(namespace, name));
    if (last && held.delete(keyOf(namespace, name))) tell({ type: 'DELETED', namespace, name, object: last });
  };

  /** A fresh list replaces what is held; what changed in between is told. */
  const relist = async () => {
    const fresh: Stored[] = [];
    let token: string | undefined;
    let page;
    do {
      page = await client.listPage(spec.ref, spec.selectors, opts.pageSize ?? 500, token);
      fresh.push(...page.items);
      token = page.continue;
    } while (token);
    counts.lists++;
    const seen = new Set<string>();
    for (const object of fresh) {
      const { namespace = '', name = '', resourceVersion: rv } = metaOf(object);
      seen.add(keyOf(namespace, name));
      if (metaOf(held.get(keyOf(namespace, name)) ?? {}).resourceVersion !== rv || !held.has(keyOf(namespace, name))) put(object);
    }
    for (const [key, object] of [...held]) if (!seen.has(key)) remove(object);
    resourceVersion = page.resourceVersion;
    if (!isSynced) {
      isSynced = true;
      resolveSynced();
    }
  };

  const handle = (line: string) => {
    const event = JSON.parse(line) as { type?: string; object?: Stored };
    const object = event.object ?? {};
    if (event.type === 'ERROR') {
      const status = object as { code?: number; message?: string };
      throw new KubeError(`watch ${spec.ref.kind}: ${String(status.message ?? 'error')}`, status.code);
    }
    const rv = metaOf(object).resourceVersion;
    if (event.type === 'ADDED' || event.type === 'MODIFIED') put(object);
    else if (event.type === 'DELETED') remove(object);
    if (rv) resourceVersion = rv;
  };

  /** One watch, until the server ends it. */
  const watchOnce = async () => {
    const stream = await client.watch(spec.ref, spec.selectors, resourceVersion, watchSeconds);
    counts.watches++;
    reader = stream.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || stopped) return;
        buffer += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line.trim()) handle(line);
        }
        if (buffer.length > maxEventBytes) throw new KubeError(`watch ${spec.ref.kind}: an event larger than ${maxEventBytes} bytes`);
      }
    } finally {
      await reader.cancel().catch(() => undefined);
      reader = undefined;
    }
  };

  const loop = async () => {
    let backoff = opts.retryMs ?? 500;
    while (!stopped) {
      try {
        if (!resourceVersion) await relist();
        const began = Date.now();
        await watchOnce();
        // A watch that ends at once without an error (a proxy cutting it) must not spin: wait as after a failure.
        if (Date.now() - began < 1000) {
          await pause(backoff);
          backoff = Math.min(backoff * 2, 30_000);
        } else backoff = opts.retryMs ?? 500;
      } catch (err) {
        if (stopped) return;
        // Too old a version: the history is gone, a new list tells what changed.
        resourceVersion = '';
        if (!(err instanceof KubeError && err.status === 410)) {
          opts.onError?.(`${spec.ref.kind} cache: ${err instanceof Error ? err.message : String(err)}; listing again in ${backoff} ms`);
          await pause(backoff);
          backoff = Math.min(backoff * 2, 30_000);
        }
      }
    }
  };
  void loop();

  return {
    spec,
    synced: () => isSynced,
    whenSynced: () => syncedPromise,
    get: (namespace, name) => {
      const object = held.get(keyOf(namespace, name));
      return object && structuredClone(object);
    },
    version: (namespace, name) => {
      const object = held.get(keyOf(namespace, name));
      return object && metaOf(object).resourceVersion;
    },
    list: (namespace, labelSelector) =>
      [...held.values()].filter((o) => (namespace === undefined || metaOf(o).namespace === namespace) && labelsMatch(metaOf(o).labels, labelSelector)).map((o) => structuredClone(o)),
    onChange: (listener) => void listeners.push(listener),
    counts: () => ({ ...counts, held: held.size }),
    stop() {
      stopped = true;
      void reader?.cancel().catch(() => undefined);
    },
  };
}
