// `clusterConfig.addons.registry`: the knobs, their defaults and their validation, in one table that
// also yields the OpenAPI schema CAPI validates with (render/variables.ts). Validation here repeats
// CAPI's on purpose: hook requests may come from a ClusterClass whose schema is older than ours.
import { RenderError } from './metadata.ts';
import { readSources, type SourceConfig } from './sources.ts';

export const PROVIDERS = ['CNCF Distribution'] as const;
export const PLACEMENTS = ['ControlPlane', 'Any'] as const;

/** Pinned images; overridable for air gaps. Not schema defaults, so an extension upgrade moves them. */
export const DEFAULT_IMAGES: Images = {
  registry: 'docker.io/library/registry:3.1.2',
  regbot: 'ghcr.io/regclient/regbot:v0.11.7',
};

export interface Images {
  registry: string;
  regbot: string;
}

export interface Resources {
  requests?: { cpu?: string; memory?: string };
  limits?: { cpu?: string; memory?: string };
}

export interface RegistryConfig {
  provider: (typeof PROVIDERS)[number];
  replicas: number;
  storage: { size: string; storageClassName?: string };
  placement: (typeof PLACEMENTS)[number];
  syncInterval: string;
  images: Images;
  resources: Resources;
  containerd: { dialTimeout: string };
  /** htpasswd authentication on the registry (default on): nodes and the sync sidecars pull with one credential, people push with another. */
  auth: { enabled: boolean };
  /** Distribution's garbage collection, run by each pod before its registry starts; `interval` 0s: only on restarts. */
  garbageCollection: { interval: string; deleteUntagged: boolean };
  /** Distribution's Prometheus metrics on the pod network, reachable (NetworkPolicy) from these namespaces only. */
  metrics: { enabled: boolean; allowFrom: string[] };
  /** Repository prefixes only Pods in the listed namespaces may run (render/admission.ts). */
  restrictedRepositories: RestrictedRepository[];
  /** Registries the writer copies from; undefined: the platform's default source (if any), [] none. */
  sources?: SourceConfig[];
}

export interface RestrictedRepository {
  /** A prefix of the repository path as the mirror stores it (`corp/`, `library/internal-`). */
  prefix: string;
  namespaces: string[];
}

export const DEFAULTS = {
  provider: 'CNCF Distribution',
  replicas: 2,
  storageSize: '100Gi',
  placement: 'ControlPlane',
  syncInterval: '1m',
  dialTimeout: '2s',
  authEnabled: true,
  gcInterval: '168h',
  gcDeleteUntagged: true,
  metricsEnabled: true,
  // kube-prometheus-stack's and the Prometheus Operator's usual namespace.
  metricsAllowFrom: ['monitoring'],
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
} as const;

export const LIMITS = { minReplicas: 1, maxReplicas: 10, maxAllowFrom: 16, maxRestricted: 32 } as const;
export const PATTERNS = {
  // Kubernetes quantity (binary or decimal suffix), as the API server accepts it.
  quantity: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$',
  // Go duration as time.ParseDuration reads it, positive.
  duration: '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$',
  // An image reference: [registry/]path[:tag][@digest], no spaces.
  image: '^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$',
  dnsSubdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  namespace: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
  // A prefix of a repository path: path components as Distribution names them, ending anywhere.
  repositoryPrefix: '^[a-z0-9]+([._/-][a-z0-9]+)*[._/-]?$',
} as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const FIELD = 'clusterConfig.addons.registry';

class Reader {
  readonly errors: string[] = [];
  constructor(private readonly root: Record<string, unknown>) {}
  private at(path: string): unknown {
    return path.split('.').reduce<unknown>((v, k) => (isObject(v) ? v[k] : undefined), this.root);
  }
  string(path: string, fallback: string | undefined, check?: { pattern?: string; allowed?: readonly string[]; what?: string }): string | undefined {
    const v = this.at(path);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') return void this.errors.push(`${FIELD}.${path} must be a string`);
    if (check?.allowed && !check.allowed.includes(v)) {
      return void this.errors.push(`${FIELD}.${path} is ${JSON.stringify(v)}: allowed values are ${check.allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    }
    if (check?.pattern && !new RegExp(check.pattern).test(v)) return void this.errors.push(`${FIELD}.${path} is ${JSON.stringify(v)}: expected ${check.what}`);
    return v;
  }
  boolean(path: string, fallback: boolean): boolean {
    const v = this.at(path);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      this.errors.push(`${FIELD}.${path} is ${JSON.stringify(v)}: expected true or false`);
      return fallback;
    }
    return v;
  }
  stringList(path: string, fallback: readonly string[], max: number, check: { pattern: string; what: string }): string[] {
    const v = this.at(path);
    if (v === undefined || v === null) return [...fallback];
    const bad = Array.isArray(v) ? v.find((s) => typeof s !== 'string' || !new RegExp(check.pattern).test(s)) : undefined;
    if (!Array.isArray(v) || v.length > max) this.errors.push(`${FIELD}.${path} must be a list of at most ${max} strings`);
    else if (bad !== undefined) this.errors.push(`${FIELD}.${path} holds ${JSON.stringify(bad)}: expected ${check.what}`);
    else return v as string[];
    return [...fallback];
  }
  integer(path: string, fallback: number, min: number, max: number): number {
    const v = this.at(path);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.errors.push(`${FIELD}.${path} is ${JSON.stringify(v)}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return v;
  }
  restricted(path: string): RestrictedRepository[] {
    const v = this.at(path);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.length > LIMITS.maxRestricted) {
      this.errors.push(`${FIELD}.${path} must be a list of at most ${LIMITS.maxRestricted} {prefix, namespaces}`);
      return [];
    }
    return v.flatMap((item, i) => {
      const at = `${path}[${i}]`;
      if (!isObject(item)) {
        this.errors.push(`${FIELD}.${at} must be an object with prefix and namespaces`);
        return [];
      }
      for (const k of Object.keys(item)) if (k !== 'prefix' && k !== 'namespaces') this.errors.push(`${FIELD}.${at} has an unknown field ${JSON.stringify(k)}: known fields are prefix, namespaces`);
      const prefix = typeof item.prefix === 'string' && new RegExp(PATTERNS.repositoryPrefix).test(item.prefix) && item.prefix.length <= 255 ? item.prefix : undefined;
      if (!prefix) this.errors.push(`${FIELD}.${at}.prefix is ${JSON.stringify(item.prefix)}: expected the start of a repository path such as corp/ or library/internal-`);
      const namespaces = item.namespaces ?? [];
      const okNamespaces = Array.isArray(namespaces) && namespaces.length <= LIMITS.maxAllowFrom && namespaces.every((n) => typeof n === 'string' && new RegExp(PATTERNS.namespace).test(n));
      if (!okNamespaces) this.errors.push(`${FIELD}.${at}.namespaces must be a list of at most ${LIMITS.maxAllowFrom} namespace names`);
      return prefix && okNamespaces ? [{ prefix, namespaces: namespaces as string[] }] : [];
    });
  }
  sources(path: string): SourceConfig[] | undefined {
    return readSources(this.at(path), `${FIELD}.${path}`, this.errors);
  }
  /** Unknown keys are errors: a typo like `replica: 3` must not silently mean the default. */
  known(path: string, keys: readonly string[]): void {
    const v = path ? this.at(path) : this.root;
    if (v === undefined || v === null) return;
    if (!isObject(v)) return void this.errors.push(`${FIELD}${path ? `.${path}` : ''} must be an object`);
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.errors.push(`${FIELD}${path ? `.${path}` : ''} has an unknown field ${JSON.stringify(k)}: known fields are ${keys.join(', ')}`);
  }
}

/**
 * Validates and defaults the variable's value; throws a RenderError listing every problem. `images`:
 * what a Cluster that names no image gets (the server's --registry-image/--regbot-image, for air gaps).
 */
export function readRegistryConfig(value: Record<string, unknown>, images: Images = DEFAULT_IMAGES): RegistryConfig {
  const r = new Reader(value);
  r.known('', ['provider', 'replicas', 'storage', 'placement', 'syncInterval', 'images', 'resources', 'containerd', 'auth', 'garbageCollection', 'metrics', 'restrictedRepositories', 'sources']);
  r.known('garbageCollection', ['interval', 'deleteUntagged']);
  r.known('auth', ['enabled']);
  r.known('metrics', ['enabled', 'allowFrom']);
  r.known('storage', ['size', 'storageClassName']);
  r.known('images', ['registry', 'regbot', 'regsync']);
  r.known('containerd', ['dialTimeout']);
  r.known('resources', ['requests', 'limits']);
  r.known('resources.requests', ['cpu', 'memory']);
  r.known('resources.limits', ['cpu', 'memory']);
  const quantity = { pattern: PATTERNS.quantity, what: 'a Kubernetes quantity such as 100Gi' };
  const duration = { pattern: PATTERNS.duration, what: 'a duration such as 2m or 500ms' };
  const image = { pattern: PATTERNS.image, what: 'an image reference such as registry.example.com/registry:3.1.2' };
  const resource = (path: string, fallback: string | undefined) => r.string(path, fallback, quantity);
  const config: RegistryConfig = {
    provider: r.string('provider', DEFAULTS.provider, { allowed: PROVIDERS }) as RegistryConfig['provider'],
    replicas: r.integer('replicas', DEFAULTS.replicas, LIMITS.minReplicas, LIMITS.maxReplicas),
    storage: {
      size: r.string('storage.size', DEFAULTS.storageSize, quantity)!,
      ...optional('storageClassName', r.string('storage.storageClassName', undefined, { pattern: PATTERNS.dnsSubdomain, what: 'a StorageClass name' })),
    },
    placement: r.string('placement', DEFAULTS.placement, { allowed: PLACEMENTS }) as RegistryConfig['placement'],
    syncInterval: r.string('syncInterval', DEFAULTS.syncInterval, duration)!,
    images: {
      registry: r.string('images.registry', images.registry, image)!,
      regbot: r.string('images.regbot', images.regbot, image)!,
    },
    resources: {
      requests: compact({ cpu: resource('resources.requests.cpu', DEFAULTS.resources.requests.cpu), memory: resource('resources.requests.memory', DEFAULTS.resources.requests.memory) }),
      limits: compact({ cpu: resource('resources.limits.cpu', undefined), memory: resource('resources.limits.memory', DEFAULTS.resources.limits.memory) }),
    },
    containerd: { dialTimeout: r.string('containerd.dialTimeout', DEFAULTS.dialTimeout, duration)! },
    auth: { enabled: r.boolean('auth.enabled', DEFAULTS.authEnabled) },
    garbageCollection: {
      interval: r.string('garbageCollection.interval', DEFAULTS.gcInterval, duration)!,
      deleteUntagged: r.boolean('garbageCollection.deleteUntagged', DEFAULTS.gcDeleteUntagged),
    },
    metrics: {
      enabled: r.boolean('metrics.enabled', DEFAULTS.metricsEnabled),
      allowFrom: r.stringList('metrics.allowFrom', DEFAULTS.metricsAllowFrom, LIMITS.maxAllowFrom, { pattern: PATTERNS.namespace, what: 'a namespace name' }),
    },
    restrictedRepositories: r.restricted('restrictedRepositories'),
    ...optional('sources', r.sources('sources')),
  };
  // An air-gapped Cluster that pointed regsync at its own mirror would otherwise pull regbot from ghcr.io.
  if (r.string('images.regsync', undefined, image) !== undefined && r.string('images.regbot', undefined) === undefined) {
    r.errors.push(`${FIELD}.images.regsync is no longer used: the replicas sync with regbot (regclient's scripting tool, which can also delete); set images.regbot to your copy of ${images.regbot} and remove images.regsync`);
  }
  if (r.errors.length) throw new RenderError(r.errors.join('; '));
  return config;
}

const optional = <K extends string, V>(key: K, v: V | undefined) => (v === undefined ? {} : ({ [key]: v } as Record<K, V>));
const compact = <T extends Record<string, string | undefined>>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: string };
