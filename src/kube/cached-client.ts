// A management client whose reads come from list+watch caches (cache.ts) where one covers them, and
// from the API server otherwise; writes always go to the API server. After a write the object is read
// from the API server until the watch has brought the change (a short, bounded while), so a pass never
// acts on its own stale copy: create-if-absent followed by a read sees what was created.
import type { ObjectCache, Stored } from './cache.ts';
import { storedSecret, withEnsure, type BaseClient, type KindRef, type KubeClient, type ObjectRef } from './client.ts';

export interface CacheScope {
  cache: ObjectCache;
  /** Whether the cache holds this object if it exists. */
  covers(ref: ObjectRef): boolean;
  /** Whether a miss means the object does not exist (false: a miss is read from the API server, e.g. objects another controller labels). */
  authoritative: boolean;
  /** Whether a list of this kind and selector is answered from the cache. */
  lists?(ref: KindRef, labelSelector: string): boolean;
}

export interface CachedClientOptions {
  /** How long after a write an object is read from the API server when no watch event came first. */
  freshMs?: number;
  now?: () => number;
}

const keyOf = (ref: { apiVersion?: string; kind: string; namespace?: string; name?: string }) => `${ref.kind}/${ref.namespace ?? ''}/${ref.name ?? ''}`;

/** The counts of reads answered by a cache and by the API server (the bench prints them). */
export interface ReadCounts { cached: number; direct: number }

export function cachedClient(direct: KubeClient, scopes: CacheScope[], opts: CachedClientOptions = {}): KubeClient & { reads: ReadCounts } {
  const freshMs = opts.freshMs ?? 10_000;
  const now = opts.now ?? Date.now;
  /**
   * Objects written lately: read from the API server until the watch brings the version written (when
   * the answer named it; else any event) or `freshMs` passed.
   */
  const written = new Map<string, { until: number; version?: string }>();
  const reads: ReadCounts = { cached: 0, direct: 0 };
  for (const scope of scopes) {
    scope.cache.onChange((e) => {
      const key = keyOf({ kind: scope.cache.spec.ref.kind, namespace: e.namespace, name: e.name });
      const mark = written.get(key);
      // An event of an earlier write (of ours or another's) does not bring a later one.
      if (mark && (!mark.version || mark.version === (e.object.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion)) written.delete(key);
    });
  }
  /**
   * Runs a write; afterwards (also when it failed: a conflict says the object changed) the object is read
   * from the API server until the watch brings it, unless it did so while the write was answered.
   */
  const writing = async <T>(ref: { kind: string; namespace?: string; name?: string }, write: () => Promise<T>, opts: { unchanged?: (result: T) => boolean; version?: (result: T) => string | undefined } = {}): Promise<T> => {
    const scope = scopes.find((s) => s.cache.spec.ref.kind === ref.kind && s.covers({ apiVersion: s.cache.spec.ref.apiVersion, kind: ref.kind, namespace: ref.namespace, name: ref.name ?? '' }));
    const versionHeld = () => scope?.cache.version(ref.namespace ?? '', ref.name ?? '');
    const before = versionHeld();
    let result: T | undefined;
    let done = false;
    try {
      result = await write();
      done = true;
      return result;
    } finally {
      if (written.size > 10_000) for (const [k, w] of written) if (w.until <= now()) written.delete(k);
      const version = done ? opts.version?.(result as T) : undefined;
      // A create-if-absent that found the object held already changed nothing: the cache is current.
      const nothingChanged = done && opts.unchanged?.(result as T) && versionHeld() !== undefined;
      // The version written is known: the cache is current once it holds that one. Not known (a delete, a
      // create): current when the held version changed while the write was answered.
      const current = version ? versionHeld() === version : !!scope && versionHeld() !== before;
      if (!nothingChanged && !current) written.set(keyOf(ref), { until: now() + freshMs, ...(version ? { version } : {}) });
    }
  };
  /** The scope that answers a read of `ref`, if any. */
  const scopeFor = (ref: ObjectRef) => {
    const mark = written.get(keyOf(ref));
    if (mark && mark.until > now()) return undefined;
    return scopes.find((s) => s.cache.synced() && s.covers(ref));
  };
  const cachedRead = (ref: ObjectRef): { hit: boolean; object?: Stored } => {
    const scope = scopeFor(ref);
    const object = scope?.cache.get(ref.namespace ?? '', ref.name);
    if (scope && (object || scope.authoritative)) {
      reads.cached++;
      return { hit: true, ...(object ? { object } : {}) };
    }
    reads.direct++;
    return { hit: false };
  };
  const readSecret = async (namespace: string, name: string) => {
    const read = cachedRead({ apiVersion: 'v1', kind: 'Secret', namespace, name });
    return read.hit ? read.object && storedSecret(read.object) : direct.readSecret(namespace, name);
  };
  const base: BaseClient = {
    ...direct,
    readSecret,
    getSecret: async (namespace, name) => (await readSecret(namespace, name))?.data,
    async getObject(ref) {
      const read = cachedRead(ref);
      return read.hit ? read.object : direct.getObject(ref);
    },
    async listObjects(ref, labelSelector) {
      const scope = scopes.find((s) => s.cache.synced() && s.lists?.(ref, labelSelector));
      if (!scope) {
        reads.direct++;
        return direct.listObjects(ref, labelSelector);
      }
      reads.cached++;
      return scope.cache.list(ref.namespace, labelSelector);
    },
    deleteObject: (ref, o) => writing(ref, () => direct.deleteObject(ref, o)),
    createSecret: (secret) => writing({ kind: 'Secret', ...secret }, () => direct.createSecret(secret), { unchanged: (r) => r === 'exists' }),
    applySecret: (secret) => writing({ kind: 'Secret', ...secret }, () => direct.applySecret(secret), { version: (v) => v }),
    applyObject: (object) => writing({ kind: String(object.kind), namespace: object.metadata?.namespace, name: object.metadata?.name }, () => direct.applyObject(object), { version: (v) => v }),
  };
  return { ...withEnsure(base), reads };
}
