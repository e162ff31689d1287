// The only code that talks to Kubernetes (@kubernetes/client-node). It speaks in Secrets as plain
// text maps and turns every API failure into a KubeError whose message says what to do.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { holds, sameSecretData, storedSecret, toObject, versionOf } from './objects.ts';
import { clientNode } from './client-node.ts';
import type { WorkloadKubeconfig } from './workload-kubeconfig.ts';
import { boundBody, MAX_WORKLOAD_RESPONSE_BYTES, TooLargeError, WORKLOAD_PAGE_SIZE } from './bounded.ts';
import { explain, KubeError, REQUEST_TIMEOUT_MS } from './errors.ts';
import type { ObjectPage, Selectors } from './client-node-entry.ts';

export const FIELD_MANAGER = 'capi-registry-addon';

export { KubeError, REQUEST_TIMEOUT_MS } from './errors.ts';

export interface SecretObject {
  name: string;
  namespace: string;
  type?: string;
  labels?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  data: Record<string, string>;
  /** A precondition: the write fails with a conflict (409) unless the stored Secret is still at this version. */
  resourceVersion?: string;
}

/** An object's identity, enough to read or delete it. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

/** A kind, in one namespace or (none given) in all. */
export interface KindRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
}

export type { ObjectPage, Selectors } from './client-node-entry.ts';
export { holds, sameSecretData, storedSecret } from './objects.ts';

export interface StoredSecret {
  data: Record<string, string>;
  resourceVersion: string;
}

export interface KubeClient {
  /** The Secret's entries as text; undefined when it does not exist. */
  getSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Like getSecret, with the resourceVersion (for caches keyed on it). */
  readSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /** Any object as JSON; undefined when it does not exist. */
  getObject(ref: ObjectRef): Promise<Record<string, unknown> | undefined>;
  /**
   * The metadata of every object of one kind matching a label selector, page by page (only metadata is
   * sent and parsed); `pick` keeps what is needed of each, so a page is dropped once read.
   */
  listMetadata<T>(ref: { apiVersion: string; kind: string; namespace?: string }, labelSelector: string, pick: (metadata: Record<string, unknown>) => T): Promise<T[]>;
  /** Objects of one kind matching a label selector, in one namespace or (none given) in all. */
  listObjects(ref: { apiVersion: string; kind: string; namespace?: string }, labelSelector: string): Promise<Record<string, unknown>[]>;
  /** Deletes the object: 'deleted', or 'absent' when there was nothing to delete. `Orphan` leaves its dependents (a StatefulSet's pods). */
  deleteObject(ref: ObjectRef, opts?: { propagationPolicy?: 'Orphan' | 'Background' | 'Foreground' }): Promise<'deleted' | 'absent'>;
  /** Creates the Secret unless one exists already (then nothing is written): 'created' | 'exists'. */
  createSecret(secret: SecretObject): Promise<'created' | 'exists'>;
  /** Server-side apply with our field manager: creates or converges our fields, leaves others' alone. Resolves to the stored resourceVersion when the answer says it. */
  applySecret(secret: SecretObject): Promise<string | undefined>;
  /** Server-side apply of any object (same field manager); the stored resourceVersion likewise. */
  applyObject(object: KubernetesObject): Promise<string | undefined>;
  /**
   * Reads the object and applies it only when the stored one does not already hold every field given
   * (steady state: a read, no write). Returns whether it applied. `stored`: the object as just read (no second read).
   */
  ensureObject(object: KubernetesObject, stored?: Record<string, unknown>): Promise<boolean>;
  /** The same for a Secret: applied only when its stored data differs from `secret.data`. Returns whether it applied. */
  ensureSecret(secret: SecretObject, stored?: Record<string, string>): Promise<boolean>;
  /** A page of whole objects of one kind (a cache's list), with the list's resourceVersion to watch from. */
  listPage(ref: KindRef, selectors: Selectors, limit: number, continueToken?: string): Promise<ObjectPage>;
  /** Watch events after `resourceVersion`, one JSON object per line; the server ends the stream after `timeoutSeconds`. */
  watch(ref: KindRef, selectors: Selectors, resourceVersion: string, timeoutSeconds: number): Promise<ReadableStream<Uint8Array>>;
  /** The last `tailLines` lines of a container's log, at most `limitBytes`; undefined when the pod does not exist. */
  podLog(namespace: string, pod: string, container: string, opts: { tailLines: number; limitBytes: number }): Promise<string | undefined>;
}

/** What a list or watch asked for, in words: the namespace (if one) and the selectors. */
const selected = (ref: KindRef, s: Selectors) => `${ref.namespace ? `in ${ref.namespace} ` : ''}(selector ${[s.labelSelector, s.fieldSelector].filter(Boolean).join(' ')})`;

/**
 * A client for a workload cluster from the checked data of CAPI's `<cluster>-kubeconfig` Secret
 * (readWorkloadKubeconfig): built from options, so client-node never sees exec, auth-provider, file
 * paths or proxies.
 */
export async function clientFromKubeconfig(config: WorkloadKubeconfig): Promise<KubeClient> {
  return kubeClient(kubeConfigFor(config), { maxResponseBytes: MAX_WORKLOAD_RESPONSE_BYTES });
}

/** client-node's KubeConfig for a checked workload kubeconfig (also `seed`'s port-forward). */
export function kubeConfigFor(config: WorkloadKubeconfig): KubeConfig {
  const { KubeConfig } = clientNode();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'workload', server: config.server, caData: config.caData, skipTLSVerify: false, ...(config.tlsServerName ? { tlsServerName: config.tlsServerName } : {}) }],
    users: [{ name: 'workload', ...(config.certData ? { certData: config.certData, keyData: config.keyData } : { token: config.token }) }],
    contexts: [{ name: 'workload', cluster: 'workload', user: 'workload' }],
    currentContext: 'workload',
  });
  return kc;
}

declare const __VERSION__: string;
const USER_AGENT = `capi-registry-addon/${typeof __VERSION__ === 'string' ? __VERSION__ : 'dev'}`;

/** `maxResponseBytes`: the largest answer read (workload clusters: MAX_WORKLOAD_RESPONSE_BYTES); none for the management cluster. */
export async function kubeClient(kc: KubeConfig, opts: { timeoutMs?: number; maxResponseBytes?: number } = {}): Promise<KubeClient> {
  const { MetadataListApi, PatchStrategy, setHeaderMiddleware } = clientNode();
  const api = MetadataListApi.fromKubeConfig(kc);
  // Every request: our name in the API server's audit log, and a deadline (client-node's transport would wait minutes).
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const named = setHeaderMiddleware('User-Agent', USER_AGENT);
  // client-node 2.0 makes a new undici Agent for every request (KubeConfig.createDispatcher is not
  // cached), so every request paid a TLS handshake and a fresh OpenSSL context, freed only when the
  // garbage collector got to it: most of a replica's memory outside the JavaScript heap (bench:fleet,
  // smaps). One Agent per client, the first one made, keeps connections alive and reused; the
  // credentials it carries are the client's own and never change.
  let dispatcher: unknown;
  (api as unknown as { configuration: { middleware: unknown[] } }).configuration.middleware.push({
    pre: (request: { setSignal(signal: AbortSignal): void; getUrl(): string; getDispatcher(): unknown; setDispatcher(d: unknown): void }) => {
      dispatcher ??= request.getDispatcher();
      if (dispatcher) request.setDispatcher(dispatcher);
      // A watch lasts as long as it asked the server to (timeoutSeconds), and a little more.
      const watchSeconds = Number(/[?&]watch=true.*?[?&]timeoutSeconds=(\d+)|[?&]timeoutSeconds=(\d+).*?[?&]watch=true/.exec(request.getUrl())?.slice(1).find(Boolean));
      request.setSignal(AbortSignal.timeout(watchSeconds ? (watchSeconds + 30) * 1000 : timeoutMs));
      return named.pre(request as never);
    },
    post: (response: Parameters<typeof boundBody>[0]) => named.post((opts.maxResponseBytes ? boundBody(response, opts.maxResponseBytes) : response) as never),
  });
  const codeOf = (err: unknown) => (err as { code?: number }).code;
  const where = (ref: { namespace?: string; name?: string }) => (ref.namespace ? `${ref.namespace}/${ref.name}` : String(ref.name));
  const readSecret = async (namespace: string, name: string): Promise<StoredSecret | undefined> => {
    try {
      return storedSecret((await api.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } })) as unknown as Record<string, unknown>);
    } catch (err) {
      if (codeOf(err) === 404) return undefined;
      throw explain('get', 'Secret', `${namespace}/${name}`, err);
    }
  };
  const client: BaseClient = {
    readSecret,
    async getSecret(namespace, name) {
      return (await readSecret(namespace, name))?.data;
    },
    async getObject(ref) {
      try {
        return (await api.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } })) as unknown as Record<string, unknown>;
      } catch (err) {
        if (codeOf(err) === 404) return undefined;
        throw explain('get', ref.kind, where(ref), err);
      }
    },
    async listMetadata(ref, labelSelector, pick) {
      const out: ReturnType<typeof pick>[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await api.listMetadataPage(ref, labelSelector, WORKLOAD_PAGE_SIZE, token);
          for (const item of page.items) out.push(pick((item.metadata ?? {}) as Record<string, unknown>));
          token = page.continue;
        } while (token);
        return out;
      } catch (err) {
        if (err instanceof TooLargeError) throw new KubeError(`list ${ref.kind} (metadata, pages of ${WORKLOAD_PAGE_SIZE}): ${err.message}`, err.status);
        throw explain('list', ref.kind, `(selector ${labelSelector})`, err);
      }
    },
    async listObjects(ref, labelSelector) {
      try {
        const list = await api.list(ref.apiVersion, ref.kind, ref.namespace, undefined, undefined, undefined, undefined, labelSelector);
        return (list.items ?? []) as unknown as Record<string, unknown>[];
      } catch (err) {
        throw explain('list', ref.kind, `(selector ${labelSelector})`, err);
      }
    },
    async deleteObject(ref, opts = {}) {
      try {
        await api.delete({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } }, undefined, undefined, undefined, undefined, opts.propagationPolicy);
        return 'deleted';
      } catch (err) {
        if (codeOf(err) === 404) return 'absent';
        throw explain('delete', ref.kind, where(ref), err);
      }
    },
    async createSecret(secret) {
      try {
        await api.create(toObject(secret), undefined, undefined, FIELD_MANAGER);
        return 'created';
      } catch (err) {
        if (codeOf(err) === 409) return 'exists';
        throw explain('create', 'Secret', `${secret.namespace}/${secret.name}`, err);
      }
    },
    async applySecret(secret) {
      try {
        return versionOf(await api.patch(toObject(secret), undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
      } catch (err) {
        throw explain('patch', 'Secret', `${secret.namespace}/${secret.name}`, err);
      }
    },
    async applyObject(object) {
      try {
        return versionOf(await api.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
      } catch (err) {
        throw explain('patch', String(object.kind), where(object.metadata ?? {}), err);
      }
    },
    async listPage(ref, selectors, limit, continueToken) {
      try {
        return await api.listPage(ref, selectors, limit, continueToken);
      } catch (err) {
        if (err instanceof TooLargeError) throw new KubeError(`list ${ref.kind} ${selected(ref, selectors)} (pages of ${limit}): ${err.message}`, err.status);
        throw explain('list', ref.kind, selected(ref, selectors), err);
      }
    },
    async watch(ref, selectors, resourceVersion, timeoutSeconds) {
      try {
        return await api.watch(ref, selectors, resourceVersion, timeoutSeconds);
      } catch (err) {
        throw explain('watch', ref.kind, selected(ref, selectors), err);
      }
    },
    async podLog(namespace, pod, container, { tailLines, limitBytes }) {
      try {
        return await api.podLog(namespace, pod, container, tailLines, limitBytes);
      } catch (err) {
        if (codeOf(err) === 404) return undefined;
        throw explain('get', 'Pod log', `${namespace}/${pod} (${container})`, err);
      }
    },
  };
  return withEnsure(client);
}

/** A client without the read-then-apply helpers, which withEnsure adds over its own reads and writes. */
export type BaseClient = Omit<KubeClient, 'ensureObject' | 'ensureSecret'>;

/** ensureObject and ensureSecret over a client's own get and apply (so a cached client's reads serve them too). */
export function withEnsure(client: BaseClient): KubeClient {
  return {
    ...client,
    async ensureObject(object, known) {
      const ref = { apiVersion: String(object.apiVersion), kind: String(object.kind), name: String(object.metadata?.name), namespace: object.metadata?.namespace };
      const stored = known ?? (await client.getObject(ref));
      if (stored && holds(stored, object)) return false;
      await client.applyObject(object);
      return true;
    },
    async ensureSecret(secret, known) {
      if (sameSecretData(known ?? (await client.getSecret(secret.namespace, secret.name)), secret.data)) return false;
      await client.applySecret(secret);
      return true;
    },
  };
}
