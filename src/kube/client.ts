// The only code that talks to Kubernetes (@kubernetes/client-node). It speaks in Secrets as plain
// text maps and turns every API failure into a KubeError whose message says what to do.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { base64FromText, textFromBase64 } from '../pki/pem.ts';

export const FIELD_MANAGER = 'capi-registry-addon';

export class KubeError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface SecretObject {
  name: string;
  namespace: string;
  type?: string;
  labels?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  data: Record<string, string>;
}

export interface SecretClient {
  /** The Secret's entries as text; undefined when it does not exist. */
  getSecret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Creates the Secret unless one exists already (then nothing is written): 'created' | 'exists'. */
  createSecret(secret: SecretObject): Promise<'created' | 'exists'>;
  /** Server-side apply with our field manager: creates or converges our fields, leaves others' alone. */
  applySecret(secret: SecretObject): Promise<void>;
  /** Server-side apply of any object (same field manager). */
  applyObject(object: KubernetesObject): Promise<void>;
}


function explain(verb: string, what: string, err: unknown, resource = 'secrets'): KubeError {
  const status = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : undefined;
  const reason = (() => {
    switch (status) {
      case 401: return 'unauthorized (401): the extension\'s credentials were rejected; check its kubeconfig or ServiceAccount token';
      case 403: return `forbidden (403): grant the extension's ServiceAccount "${verb}" on ${resource} in that namespace (see the RBAC rules in 'capi-registry-addon manifests')`;
      case 404: return 'not found (404)';
      case 409: return 'conflict (409): it was changed at the same time; CAPI retries the hook';
      case 422: return 'rejected as invalid (422)';
      case undefined: return `the API server could not be reached (${(err as Error)?.message?.split('\n')[0] ?? String(err)}); CAPI retries the hook`;
      default: return status >= 500 ? `the API server failed (${status}); CAPI retries the hook` : `failed with HTTP ${status}`;
    }
  })();
  const kind = resource === 'secrets' ? 'Secret' : resource;
  return new KubeError(`${verb} ${kind} ${what}: ${reason}`, status);
}

function toObject(s: SecretObject): KubernetesObject & { data: Record<string, string>; type: string } {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: s.name, namespace: s.namespace, ...(s.labels ? { labels: s.labels } : {}), ...(s.ownerReferences ? { ownerReferences: s.ownerReferences } : {}) },
    type: s.type ?? 'Opaque',
    data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, base64FromText(v)])),
  };
}

/** A client for a workload cluster from the kubeconfig CAPI stores in `<cluster>-kubeconfig` (key `value`). */
export async function clientFromKubeconfig(text: string): Promise<SecretClient> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch {
    throw new KubeError('the workload kubeconfig cannot be parsed');
  }
  if (!kc.getCurrentCluster()) throw new KubeError('the workload kubeconfig names no current cluster');
  return secretClient(kc);
}

export async function secretClient(kc: KubeConfig): Promise<SecretClient> {
  const { KubernetesObjectApi, PatchStrategy } = await import('@kubernetes/client-node');
  const api = KubernetesObjectApi.makeApiClient(kc);
  return {
    async getSecret(namespace, name) {
      try {
        const s = (await api.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } })) as { data?: Record<string, string> };
        return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, textFromBase64(v)]));
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw explain('get', `${namespace}/${name}`, err);
      }
    },
    async createSecret(secret) {
      try {
        await api.create(toObject(secret), undefined, undefined, FIELD_MANAGER);
        return 'created';
      } catch (err) {
        if ((err as { code?: number }).code === 409) return 'exists';
        throw explain('create', `${secret.namespace}/${secret.name}`, err);
      }
    },
    async applySecret(secret) {
      try {
        await api.patch(toObject(secret), undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      } catch (err) {
        throw explain('patch', `${secret.namespace}/${secret.name}`, err);
      }
    },
    async applyObject(object) {
      try {
        await api.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      } catch (err) {
        const m = object.metadata ?? {};
        throw explain('patch', m.namespace ? `${m.namespace}/${m.name}` : String(m.name), err, `${String(object.kind).toLowerCase()}s`);
      }
    },
  };
}
