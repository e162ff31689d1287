// The part of @kubernetes/client-node this extension uses. scripts/build.mjs bundles it on its own
// (CommonJS, ~1.4 MiB) and the main bundle embeds that as text: see client-node.ts.
import { KubernetesObjectApi, type KubeConfig } from '@kubernetes/client-node';

export { KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderMiddleware } from '@kubernetes/client-node';
// Not in client-node's index (its package has no exports map): `seed`'s port-forward speaks the
// WebSocket protocol itself (seed/port-forward.ts), through client-node's authenticated connect.
export { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';

export interface MetadataPage {
  items: Record<string, unknown>[];
  continue?: string;
}

export interface ObjectPage extends MetadataPage {
  resourceVersion: string;
}

/** What a list or watch selects: label and field selectors as the API server takes them ('' for none). */
export interface Selectors {
  labelSelector?: string;
  fieldSelector?: string;
}

const selectorQuery = (s: Selectors): Record<string, string> => ({
  ...(s.labelSelector ? { labelSelector: s.labelSelector } : {}),
  ...(s.fieldSelector ? { fieldSelector: s.fieldSelector } : {}),
});

/**
 * The object API plus one call client-node lacks: a page of a list as PartialObjectMetadataList, so the
 * API server sends metadata only (no spec, no status) and nothing is deserialized into typed models.
 * The request goes through the same authentication and middleware (deadline, bounded body) as every other.
 */
export class MetadataListApi extends KubernetesObjectApi {
  static fromKubeConfig(kc: KubeConfig): MetadataListApi {
    const api = kc.makeApiClient(MetadataListApi);
    api.setDefaultNamespace(kc);
    return api;
  }

  async listMetadataPage(ref: { apiVersion: string; kind: string; namespace?: string }, labelSelector: string, limit: number, continueToken?: string): Promise<MetadataPage> {
    const path = await this.specUriPath({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { namespace: ref.namespace } }, 'list');
    const text = await this.send(path, {
      ...(labelSelector ? { labelSelector } : {}), limit: String(limit), ...(continueToken ? { continue: continueToken } : {}),
    }, 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1');
    const list = JSON.parse(text) as { kind?: string; items?: Record<string, unknown>[]; metadata?: { continue?: string } };
    if (list.kind !== 'PartialObjectMetadataList') throw new Error(`the API server answered a metadata list with ${String(list.kind)}`);
    return { items: list.items ?? [], ...(list.metadata?.continue ? { continue: list.metadata.continue } : {}) };
  }

  /** The last lines of one container's log (pods/log), at most `limitBytes` of them. */
  podLog(namespace: string, pod: string, container: string, tailLines: number, limitBytes: number): Promise<string> {
    return this.send(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`, { container, tailLines: String(tailLines), limitBytes: String(limitBytes) });
  }

  /** A page of full objects (a cache's first list), with the list's resourceVersion to watch from. */
  async listPage(ref: { apiVersion: string; kind: string; namespace?: string }, selectors: Selectors, limit: number, continueToken?: string): Promise<ObjectPage> {
    const path = await this.specUriPath({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { namespace: ref.namespace } }, 'list');
    const list = JSON.parse(await this.send(path, { ...selectorQuery(selectors), limit: String(limit), ...(continueToken ? { continue: continueToken } : {}) })) as { items?: Record<string, unknown>[]; metadata?: { continue?: string; resourceVersion?: string } };
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '', ...(list.metadata?.continue ? { continue: list.metadata.continue } : {}) };
  }

  /**
   * A watch from `resourceVersion`: the answer's body, one JSON event per line. The server ends it after
   * `timeoutSeconds` (the request's own deadline is that plus a margin: see the middleware in client.ts).
   */
  async watch(ref: { apiVersion: string; kind: string; namespace?: string }, selectors: Selectors, resourceVersion: string, timeoutSeconds: number): Promise<ReadableStream<Uint8Array>> {
    const path = await this.specUriPath({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { namespace: ref.namespace } }, 'list');
    const response = await this.open(path, { ...selectorQuery(selectors), watch: 'true', allowWatchBookmarks: 'true', resourceVersion, timeoutSeconds: String(timeoutSeconds) });
    const stream = response.body.stream();
    if (!stream) throw new Error('the watch answer has no body');
    return stream;
  }

  /** A GET through the same authentication and middleware as every other call; the body as text, or an error carrying the status. */
  private async send(path: string, query: Record<string, string>, accept?: string): Promise<string> {
    return (await this.open(path, query, accept)).body.text();
  }

  /** The answer to a GET, its status checked (an error carries the status and the server's words); the body unread. */
  private async open(path: string, query: Record<string, string>, accept?: string) {
    const config = this.configuration;
    let request = config.baseServer.makeRequestContext(path, 'GET');
    if (accept) request.setHeaderParam('Accept', accept);
    for (const [k, v] of Object.entries(query)) request.setQueryParam(k, v);
    await config.authMethods.BearerToken?.applySecurityAuthentication(request);
    await config.authMethods.default?.applySecurityAuthentication(request);
    for (const m of config.middleware) request = await m.pre(request).toPromise();
    let response = await config.httpApi.send(request).toPromise();
    for (const m of config.middleware) response = await m.post(response).toPromise();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      const body = await response.body.text().catch(() => '');
      throw Object.assign(new Error(`HTTP ${response.httpStatusCode}`), { code: response.httpStatusCode, body });
    }
    return response;
  }
}
