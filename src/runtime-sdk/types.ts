// Wire types of the CAPI Runtime SDK (hooks.runtime.cluster.x-k8s.io/v1alpha1), as CAPI v1.10–v1.13
// send and read them. Only the fields this extension reads or writes are typed; everything else passes
// through untouched (CAPI adds fields between releases and we must not choke on them).

export const HOOKS_API_VERSION = 'hooks.runtime.cluster.x-k8s.io/v1alpha1';

export type ResponseStatus = 'Success' | 'Failure';

/** A `{name, value}` variable; `value` is embedded JSON, never base64. */
export interface Variable {
  name: string;
  value: unknown;
}

/** The parts of a Cluster (v1beta1 or v1beta2 shape) that hooks look at. */
export interface ClusterRef {
  name: string;
  namespace: string;
  uid?: string;
  /** spec.topology.variables (both shapes keep the same list form). */
  variables: Variable[];
  /** spec.clusterNetwork.services.cidrBlocks (v1beta1) or .services.cidrBlocks (v1beta2 keeps it). */
  serviceCidrs: string[];
  /** spec.clusterNetwork.serviceDomain, when set. */
  serviceDomain?: string;
  /** The raw object as received, for handlers that need more. */
  raw: Record<string, unknown>;
}

/** The Cluster's apiVersion as CAPI sent it (v1beta1 up to CAPI 1.10, v1beta2 after), else `fallback`. */
export const clusterApiVersionOf = (cluster: ClusterRef, fallback: string): string =>
  typeof cluster.raw.apiVersion === 'string' && cluster.raw.apiVersion.startsWith('cluster.x-k8s.io/') ? cluster.raw.apiVersion : fallback;

/** A Kubernetes timestamp (metav1.Time): RFC 3339 in UTC, whole seconds. */
export const kubernetesTime = (date: Date): string => date.toISOString().replace(/\.\d+Z$/, 'Z');

export interface GeneratePatchesItem {
  uid: string;
  holderReference: { apiVersion: string; kind: string; namespace: string; name: string; fieldPath: string };
  object: Record<string, unknown>;
  variables: Variable[];
}

export interface PatchResult {
  uid: string;
  patchType: 'JSONPatch' | 'JSONMergePatch';
  /** base64 of the UTF-8 patch document (a Go []byte on the wire). */
  patch: string;
}

/** What a hook handler returns; the wrapper turns it into the wire response. */
export interface HookResult {
  status: ResponseStatus;
  message?: string;
  /** Blocking hooks only: > 0 holds CAPI back and asks it to call again. */
  retryAfterSeconds?: number;
  /** Extra response fields (items for GeneratePatches, variables for DiscoverVariables). */
  body?: Record<string, unknown>;
}

export const success = (message?: string, body?: Record<string, unknown>): HookResult => ({
  status: 'Success',
  ...(message ? { message } : {}),
  ...(body ? { body } : {}),
});

export const failure = (message: string): HookResult => ({ status: 'Failure', message });

export const retryLater = (seconds: number, message: string): HookResult => ({
  status: 'Success',
  retryAfterSeconds: seconds,
  message,
});
