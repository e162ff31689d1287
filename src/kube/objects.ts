// Kubernetes objects as plain data, no I/O: Secrets between the API server's base64 and our text maps,
// and the comparisons that let every write be skipped when the stored object already says the same.
import type { KubernetesObject } from '@kubernetes/client-node';
import { base64FromText, textFromBase64 } from '../lib/bytes.ts';
import type { SecretObject, StoredSecret } from './client.ts';

/** A Secret as the API server sends it (base64 entries) made a StoredSecret (text entries). */
export const storedSecret = (object: Record<string, unknown>): StoredSecret => ({
  data: Object.fromEntries(Object.entries((object.data ?? {}) as Record<string, string>).map(([k, v]) => [k, textFromBase64(v)])),
  resourceVersion: String((object.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion ?? ''),
});

/** Whether a Secret's stored entries are exactly `desired` (text maps). */
export const sameSecretData = (stored: Record<string, string> | undefined, desired: Record<string, string>): boolean =>
  !!stored && Object.keys(stored).length === Object.keys(desired).length && Object.entries(desired).every(([k, v]) => stored[k] === v);

/**
 * Whether `stored` already holds every field of `desired` (objects compared key by key, so fields the
 * server or other managers added are ignored; arrays and scalars must be equal, arrays item by item).
 */
export function holds(stored: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(stored) && stored.length === desired.length && desired.every((d, i) => holds(stored[i], d));
  if (typeof desired === 'object' && desired !== null) {
    if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return false;
    return Object.entries(desired).every(([k, v]) => holds((stored as Record<string, unknown>)[k], v));
  }
  return stored === desired;
}

/** The resourceVersion an answer carries, if any. */
export const versionOf = (object: unknown): string | undefined => (object as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion || undefined;

/** A Secret as the API server takes it (base64 entries). */
export function toObject(s: SecretObject): KubernetesObject & { data: Record<string, string>; type: string } {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: s.name, namespace: s.namespace, ...(s.labels ? { labels: s.labels } : {}), ...(s.ownerReferences ? { ownerReferences: s.ownerReferences } : {}),
      ...(s.resourceVersion ? { resourceVersion: s.resourceVersion } : {}),
    },
    type: s.type ?? 'Opaque',
    data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, base64FromText(v)])),
  };
}
