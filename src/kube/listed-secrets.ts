// One pass's view of the Secrets in one namespace of a workload cluster: listed once, then every Secret
// read in that namespace is answered from the list (steady state: one request where a pass made five
// reads). A Secret written during the pass is read from the API server afterwards: the list no longer
// says what it holds.
import { KubeError, storedSecret, withEnsure, type BaseClient, type KubeClient, type ObjectRef, type Selectors } from './client.ts';

/** Secrets per page: our namespace holds a handful; more pages only when someone filled it. */
const PAGE_SIZE = 100;

export interface ListedSecrets {
  client: KubeClient;
  /** Whether the list held any Secret (then the namespace exists); false also when it could not be read whole. */
  any: boolean;
}

/**
 * Lists the namespace's Secrets matching `selectors` (KubeError when that fails, as a read would). An
 * answer too large to read (413: Secrets stuffed into the namespace) leaves every read to the API server.
 */
export async function listedSecrets(workload: KubeClient, namespace: string, selectors: Selectors): Promise<ListedSecrets> {
  const held = new Map<string, Record<string, unknown>>();
  let token: string | undefined;
  try {
    do {
      const page = await workload.listPage({ apiVersion: 'v1', kind: 'Secret', namespace }, selectors, PAGE_SIZE, token);
      for (const item of page.items) held.set(String((item.metadata as { name?: unknown } | undefined)?.name), item);
      token = page.continue;
    } while (token);
  } catch (err) {
    if (err instanceof KubeError && err.status === 413) return { client: workload, any: false };
    throw err;
  }
  const written = new Set<string>();
  const listed = (ref: ObjectRef) => ref.apiVersion === 'v1' && ref.kind === 'Secret' && ref.namespace === namespace && !written.has(ref.name);
  const writing = <T>(ref: ObjectRef, write: () => Promise<T>): Promise<T> => {
    if (listed(ref)) written.add(ref.name);
    return write();
  };
  const secretRef = (namespace: string, name: string): ObjectRef => ({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  const readSecret: KubeClient['readSecret'] = async (ns, name) => {
    if (!listed(secretRef(ns, name))) return workload.readSecret(ns, name);
    const item = held.get(name);
    return item && storedSecret(item);
  };
  const base: BaseClient = {
    ...workload,
    readSecret,
    getSecret: async (ns, name) => (await readSecret(ns, name))?.data,
    getObject: async (ref) => (listed(ref) ? held.get(ref.name) : workload.getObject(ref)),
    deleteObject: (ref, opts) => writing(ref, () => workload.deleteObject(ref, opts)),
    createSecret: (s) => writing(secretRef(s.namespace, s.name), () => workload.createSecret(s)),
    applySecret: (s) => writing(secretRef(s.namespace, s.name), () => workload.applySecret(s)),
    applyObject: (o) => writing({ apiVersion: String(o.apiVersion), kind: String(o.kind), namespace: o.metadata?.namespace, name: String(o.metadata?.name) }, () => workload.applyObject(o)),
  };
  return { client: withEnsure(base), any: held.size > 0 };
}
