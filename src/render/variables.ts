// The `clusterConfig` variable this extension publishes through DiscoverVariables, built from the
// same constants the validation in render/config.ts uses. It sticks to the subset CAPI accepts for
// ClusterClass variables (v1beta1 and v1beta2 ClusterClassVariable agree on it).
//
// Defaults: the stable policy knobs carry `default`, so CAPI shows the effective value on the Cluster.
// Images do not: a default stored into every Cluster would pin it forever, while the pinned image
// should move when the extension is upgraded. `registry` itself has no default: `{}` must stay
// present, because its presence is the opt-in.
import { DEFAULT_IMAGES, DEFAULTS, LIMITS, PATTERNS, PLACEMENTS, PROVIDERS } from './config.ts';
import { POD } from './metadata.ts';
import { sourcesSchema } from './sources.ts';

const quantity = (description: string, def?: string) => ({ type: 'string', description, pattern: PATTERNS.quantity, maxLength: 64, ...(def ? { default: def } : {}) });
const resourceList = (description: string) => ({
  type: 'object',
  description,
  properties: { cpu: quantity('CPU, e.g. 100m.'), memory: quantity('Memory, e.g. 128Mi.') },
});

export const registryVariableSchema = {
  type: 'object',
  description: 'Deploy an in-cluster OCI registry that every node uses as a mirror. Present (even {}) means enabled.',
  properties: {
    provider: { type: 'string', description: 'Registry implementation.', enum: [...PROVIDERS], default: DEFAULTS.provider },
    replicas: {
      type: 'integer',
      description: 'Registry pods, each with its own volume: registry-0 takes every push and is every node\'s first mirror; the others copy it and stand by.',
      minimum: LIMITS.minReplicas,
      maximum: LIMITS.maxReplicas,
      default: DEFAULTS.replicas,
    },
    storage: {
      type: 'object',
      description: 'Per-replica volume. The size may grow at any time (the claims are expanded when their StorageClass allows it); it never shrinks, and the StorageClass never changes once set.',
      properties: {
        size: quantity('Size of each replica\'s PersistentVolumeClaim.', DEFAULTS.storageSize),
        storageClassName: { type: 'string', description: 'StorageClass of the claims; the cluster default when absent.', pattern: PATTERNS.dnsSubdomain, maxLength: 253 },
      },
      // Transition rules: CAPI (and the API server for a CRD) checks them on every update of a Cluster
      // that had `storage` before. The hook checks the same against the running StatefulSet, whatever the schema.
      'x-kubernetes-validations': [
        { rule: '!has(self.size) || !has(oldSelf.size) || quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0', message: 'storage.size cannot shrink: volumes only grow' },
        {
          rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
          message: 'storage.storageClassName cannot change: the registry\'s data is on volumes of the class it has',
        },
      ],
    },
    placement: {
      type: 'string',
      description: 'ControlPlane: run on control-plane nodes (tolerating their taints). Any: run on any node.',
      enum: [...PLACEMENTS],
      default: DEFAULTS.placement,
    },
    syncInterval: { type: 'string', description: 'How often each replica makes itself a copy of the writer (registry-0): new and moved tags copied, deleted ones removed (Go duration). Pulls never wait for it: nodes read the writer first.', pattern: PATTERNS.duration, default: DEFAULTS.syncInterval },
    images: {
      type: 'object',
      description: 'Image overrides, e.g. for an air-gapped mirror.',
      properties: {
        registry: { type: 'string', description: `Distribution image (default ${DEFAULT_IMAGES.registry}).`, pattern: PATTERNS.image },
        regbot: { type: 'string', description: `regbot image, the replicas' sync sidecar (default ${DEFAULT_IMAGES.regbot}).`, pattern: PATTERNS.image },
        regsync: { type: 'string', description: 'No longer used (replicas sync with regbot): set regbot instead.', pattern: PATTERNS.image },
      },
    },
    resources: {
      type: 'object',
      description: `Resources of the registry container (default ${JSON.stringify(DEFAULTS.resources)}).`,
      properties: { requests: resourceList('Requests.'), limits: resourceList('Limits.') },
    },
    auth: {
      type: 'object',
      description: 'Registry authentication.',
      properties: {
        enabled: {
          type: 'boolean',
          description: 'htpasswd authentication: nodes and the sync sidecars pull with a per-cluster credential, pushes need the push credential (Secret <cluster>-registry-addon-push). false serves an open registry any pod can push to.',
          default: DEFAULTS.authEnabled,
        },
      },
    },
    garbageCollection: {
      type: 'object',
      description: 'Reclaiming disk: each pod runs Distribution\'s garbage collection before its registry starts (nothing writes then: the writer is down, nodes pull from a standby). The pods are restarted one at a time for it every interval.',
      properties: {
        interval: { type: 'string', description: 'How often the pods are restarted to collect (Go duration; 0s: only when they restart anyway).', pattern: PATTERNS.duration, maxLength: 64, default: DEFAULTS.gcInterval },
        deleteUntagged: { type: 'boolean', description: 'Also delete manifests no tag points to (pushed by digest, or a tag moved away; the platform manifests of a tagged index are kept). This includes OCI referrers pushed without a tag (signatures, SBOMs attached by subject): set false to keep them and the blobs they reference.', default: DEFAULTS.gcDeleteUntagged },
      },
    },
    metrics: {
      type: 'object',
      description: `Distribution's Prometheus metrics at :${POD.debugPort}/metrics on each registry pod (container port \`metrics\`, prometheus.io/* pod annotations). That listener also serves Go's pprof and expvar, so a NetworkPolicy lets only the allowFrom namespaces reach it (enforced where the CNI supports NetworkPolicy).`,
      properties: {
        enabled: { type: 'boolean', description: 'false keeps the listener on the pod\'s loopback (no scraping, no NetworkPolicy).', default: DEFAULTS.metricsEnabled },
        allowFrom: {
          type: 'array',
          description: 'Namespaces whose pods may reach the metrics port (your Prometheus).',
          items: { type: 'string', pattern: PATTERNS.namespace, maxLength: 63 },
          maxItems: LIMITS.maxAllowFrom,
          default: [...DEFAULTS.metricsAllowFrom],
        },
      },
    },
    restrictedRepositories: {
      type: 'array',
      description: 'Who may run what the mirror holds. Nodes pull from it with one credential for every Pod (containerd does not pass a Pod\'s pull secret to a mirror), so anything pushed into it is pullable by every Pod on every node. A Pod naming an image whose repository path starts with prefix (from any registry host: the mirror stores docker.io/corp/app and quay.io/corp/app both as corp/app) is admitted only in the namespaces listed (a ValidatingAdmissionPolicy in the workload cluster; Kubernetes 1.30+).',
      maxItems: LIMITS.maxRestricted,
      items: {
        type: 'object',
        required: ['prefix'],
        properties: {
          prefix: { type: 'string', description: 'Start of the repository path, e.g. corp/ (a whole namespace) or library/internal-.', pattern: PATTERNS.repositoryPrefix, maxLength: 255 },
          namespaces: { type: 'array', description: 'Namespaces whose Pods may run those images (none: no Pod may).', items: { type: 'string', pattern: PATTERNS.namespace, maxLength: 63 }, maxItems: LIMITS.maxAllowFrom },
        },
      },
    },
    sources: sourcesSchema,
    containerd: {
      type: 'object',
      description: 'Node-side mirror settings.',
      properties: {
        dialTimeout: {
          type: 'string',
          description: 'How long containerd waits to connect to the mirror before using the upstream (containerd 2.1+; older versions ignore it).',
          pattern: PATTERNS.duration,
          default: DEFAULTS.dialTimeout,
        },
      },
    },
  },
} as const;

export const clusterConfigVariable = {
  name: 'clusterConfig',
  required: false,
  schema: {
    openAPIV3Schema: {
      type: 'object',
      description: 'Cluster-wide configuration consumed by capi-registry-addon.',
      properties: {
        addons: {
          type: 'object',
          description: 'Add-ons deployed into the workload cluster.',
          properties: { registry: registryVariableSchema },
        },
      },
    },
  },
} as const;

const PATTERN_NAMES: Record<string, string> = { quantity: 'a Kubernetes quantity', duration: 'a Go duration', image: 'an image reference', dnsSubdomain: 'a DNS subdomain name', namespace: 'namespace names' };

type SchemaNode = { type?: string; maxItems?: number; description?: string; default?: unknown; enum?: readonly unknown[]; minimum?: number; maximum?: number; pattern?: string; items?: SchemaNode; properties?: Record<string, SchemaNode> };

/** The configuration reference as a Markdown table, one row per leaf field of `addons.registry`: the README's table is this output. */
export function variableReference(schema: SchemaNode = registryVariableSchema): string {
  const rows: string[] = [];
  const walk = (node: SchemaNode, path: string) => {
    if (node.properties) {
      for (const [key, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${key}` : key);
      return;
    }
    // A list of objects: its own row, then one row per field of an item.
    if (node.items?.properties) {
      rows.push(`| \`${path}\` | array | – | at most ${node.maxItems} | ${(node.description ?? '').replace(/\|/g, '\\|')} |`);
      return walk(node.items, `${path}[]`);
    }
    const allowed = node.enum ? node.enum.map((v) => `\`${String(v)}\``).join(', ')
      : node.minimum !== undefined ? `${node.minimum}–${node.maximum}`
      : node.items?.pattern ? PATTERN_NAMES[Object.entries(PATTERNS).find(([, re]) => re === node.items!.pattern)?.[0] ?? ''] ?? ''
      : node.pattern ? PATTERN_NAMES[Object.entries(PATTERNS).find(([, re]) => re === node.pattern)?.[0] ?? ''] ?? `matches \`${node.pattern}\`` : '';
    const def = node.default !== undefined ? `\`${Array.isArray(node.default) ? JSON.stringify(node.default) : String(node.default)}\`` : '–';
    rows.push(`| \`${path}\` | ${node.type} | ${def} | ${allowed} | ${(node.description ?? '').replace(/\|/g, '\\|')} |`);
  };
  walk(schema, '');
  return ['| field | type | default | allowed | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}
