// Source registries the writer copies from (`clusterConfig.addons.registry.sources`): what each entry
// may say, its defaults and its validation. Credentials and CAs are named by Secret reference, never
// carried in the variable: the hooks copy them into the workload cluster (addon/sources.ts).

/** A Secret in the Cluster's namespace (default) or, if it allows this source's host, the provider namespace. */
export interface SecretRef {
  name: string;
  namespace?: string;
  /** Set only for the platform's default source (the extension's own flags): no host annotation needed. */
  platform?: true;
}

export interface SourceConfig {
  /** Names the source in marks, metrics and Events; `[a-z0-9-]`, unique per Cluster. */
  name: string;
  /** host[:port] as clients address it (`docker.io` for Docker Hub). */
  host: string;
  /** false only for an `http://` URL. */
  tls: boolean;
  /** Secret with `ca.crt`: the only trust for this source (absent: the sidecar image's CA bundle). */
  caSecretRef?: SecretRef;
  /** Secret with `username` and `password` (absent: anonymous). */
  credentialsSecretRef?: SecretRef;
  /** Repository globs (`*` any run of characters, `/` included; `?` one). A glob-free entry is read directly, without the catalog. */
  repositories: string[];
  /** Tag globs. Digest tags (`sha256-…`: referrers, signatures) are never selected themselves: they come with their subject. */
  tags: string[];
  /** The most tags one pass selects from this source; what is past the cap waits and the mark says so. */
  maxTags: number;
  /** How often the writer copies from this source (Go duration). */
  interval: string;
  /** A tag the source still holds at the writer's digest but no longer selects (a pattern taken out): delete the writer's copy. */
  removeUnselected: boolean;
}

export const SOURCE_DEFAULTS = { repositories: ['*'], tags: ['*'], maxTags: 1000, interval: '10m', removeUnselected: false } as const;
export const SOURCE_LIMITS = { maxSources: 8, maxPatterns: 32, maxTags: 100_000, patternLength: 255 } as const;
export const SOURCE_PATTERNS = {
  name: '^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$',
  // https://host[:port] or http://host[:port], nothing else: no path, no user info (credentials come from a Secret).
  url: '^(https?://)?[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?/?$',
  glob: '^[A-Za-z0-9._/*?-]+$',
  secretName: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$',
} as const;
const SOURCE_FIELDS = ['name', 'url', 'caSecretRef', 'credentialsSecretRef', 'repositories', 'tags', 'maxTags', 'interval', 'removeUnselected'];
// The same text as PATTERNS.duration (render/config.ts imports this module).
const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';
const DURATION = new RegExp(DURATION_PATTERN);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The host of a source URL, and whether it speaks TLS; undefined when the URL is not one we accept. */
export function sourceAddress(url: string): { host: string; tls: boolean } | undefined {
  if (!new RegExp(SOURCE_PATTERNS.url).test(url)) return undefined;
  const tls = !url.startsWith('http://');
  const host = url.replace(/^https?:\/\//, '').replace(/\/$/, '').toLowerCase();
  const port = host.includes(':') ? Number(host.split(':')[1]) : 443;
  return port >= 1 && port <= 65535 ? { host, tls } : undefined;
}

/** A glob as an anchored Lua pattern: `*` any run, `?` one character, every Lua magic character escaped. */
export function globToLuaPattern(glob: string): string {
  return `^${glob.replace(/[\^$()%.[\]+\-]/g, (c) => `%${c}`).replace(/\*/g, '.*').replace(/\?/g, '.')}$`;
}

export const isLiteral = (glob: string) => !/[*?]/.test(glob);

/**
 * `sources` as the variable gives it: undefined when absent (the platform's default source applies),
 * else the list, defaulted. Problems are pushed onto `errors` with the field's path.
 */
export function readSources(value: unknown, field: string, errors: string[]): SourceConfig[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length > SOURCE_LIMITS.maxSources) {
    errors.push(`${field} must be a list of at most ${SOURCE_LIMITS.maxSources} sources`);
    return [];
  }
  const out = value.flatMap((item, i) => {
    const source = readSource(item, `${field}[${i}]`, errors);
    return source ? [source] : [];
  });
  const seen = new Set<string>();
  const byHost = new Map<string, SourceConfig>();
  const refs = (s: SourceConfig) => JSON.stringify([s.tls, s.caSecretRef ?? null, s.credentialsSecretRef ?? null]);
  for (const s of out) {
    if (seen.has(s.name)) errors.push(`${field}: two sources are named ${JSON.stringify(s.name)}: give each a name of its own`);
    seen.add(s.name);
    // The sidecar keeps one login per registry host.
    const other = byHost.get(s.host);
    if (other && refs(other) !== refs(s)) errors.push(`${field}: sources ${JSON.stringify(other.name)} and ${JSON.stringify(s.name)} name the same host ${s.host} with different schemes or Secrets: one host has one login; use the same caSecretRef and credentialsSecretRef`);
    byHost.set(s.host, s);
  }
  return out;
}

function readSource(item: unknown, at: string, errors: string[]): SourceConfig | undefined {
  if (!isObject(item)) return void errors.push(`${at} must be an object with at least url`);
  const before = errors.length;
  for (const k of Object.keys(item)) if (!SOURCE_FIELDS.includes(k)) errors.push(`${at} has an unknown field ${JSON.stringify(k)}: known fields are ${SOURCE_FIELDS.join(', ')}`);
  const address = typeof item.url === 'string' ? sourceAddress(item.url) : undefined;
  if (!address) errors.push(`${at}.url is ${JSON.stringify(item.url)}: expected https://host[:port] (no path, no user name or password: credentials come from credentialsSecretRef)`);
  const name = item.name ?? (address ? address.host.split(':')[0]!.replace(/\./g, '-').slice(0, 32).replace(/-+$/, '') : undefined);
  if (typeof name !== 'string' || !new RegExp(SOURCE_PATTERNS.name).test(name)) errors.push(`${at}.name is ${JSON.stringify(name)}: expected 1 to 32 of a-z, 0-9 and -`);
  const globs = (key: 'repositories' | 'tags') => {
    const v = item[key] ?? SOURCE_DEFAULTS[key];
    const ok = Array.isArray(v) && v.length >= 1 && v.length <= SOURCE_LIMITS.maxPatterns
      && v.every((g) => typeof g === 'string' && g.length <= SOURCE_LIMITS.patternLength && new RegExp(SOURCE_PATTERNS.glob).test(g));
    if (!ok) errors.push(`${at}.${key} must be a list of 1 to ${SOURCE_LIMITS.maxPatterns} patterns of letters, digits, . _ / - and the wildcards * and ?`);
    return ok ? (v as string[]) : [];
  };
  const repositories = globs('repositories');
  const tags = globs('tags');
  const maxTags = item.maxTags ?? SOURCE_DEFAULTS.maxTags;
  if (typeof maxTags !== 'number' || !Number.isInteger(maxTags) || maxTags < 1 || maxTags > SOURCE_LIMITS.maxTags) errors.push(`${at}.maxTags is ${JSON.stringify(maxTags)}: expected a whole number from 1 to ${SOURCE_LIMITS.maxTags}`);
  const interval = item.interval ?? SOURCE_DEFAULTS.interval;
  if (typeof interval !== 'string' || !DURATION.test(interval)) errors.push(`${at}.interval is ${JSON.stringify(interval)}: expected a duration such as 10m`);
  const removeUnselected = item.removeUnselected ?? SOURCE_DEFAULTS.removeUnselected;
  if (typeof removeUnselected !== 'boolean') errors.push(`${at}.removeUnselected is ${JSON.stringify(removeUnselected)}: expected true or false`);
  const caSecretRef = readSecretRef(item.caSecretRef, `${at}.caSecretRef`, errors);
  const credentialsSecretRef = readSecretRef(item.credentialsSecretRef, `${at}.credentialsSecretRef`, errors);
  if (errors.length > before) return undefined;
  return {
    name: name as string,
    host: address!.host,
    tls: address!.tls,
    ...(caSecretRef ? { caSecretRef } : {}),
    ...(credentialsSecretRef ? { credentialsSecretRef } : {}),
    repositories,
    tags,
    maxTags: maxTags as number,
    interval: interval as string,
    removeUnselected: removeUnselected as boolean,
  };
}

function readSecretRef(v: unknown, at: string, errors: string[]): SecretRef | undefined {
  if (v === undefined || v === null) return undefined;
  const nameOk = isObject(v) && typeof v.name === 'string' && new RegExp(SOURCE_PATTERNS.secretName).test(v.name);
  const namespaceOk = isObject(v) && (v.namespace === undefined || (typeof v.namespace === 'string' && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v.namespace)));
  const unknown = isObject(v) ? Object.keys(v).filter((k) => k !== 'name' && k !== 'namespace') : [];
  if (!nameOk || !namespaceOk || unknown.length) return void errors.push(`${at} must be {name, namespace?} naming a Secret (namespace: the Cluster's, or the provider namespace when that Secret allows this source)`);
  return { name: v.name as string, ...(typeof v.namespace === 'string' ? { namespace: v.namespace } : {}) };
}

/**
 * The platform's default source from `serve --default-source*` (its Secrets in the provider namespace);
 * undefined without a URL (`none` or empty). Throws an Error naming the flag when a value is not one a Cluster could give.
 */
export function platformSource(flags: { url?: string; caSecret?: string; credentialsSecret?: string; repositories?: string; tags?: string; interval?: string }, providerNamespace: string): SourceConfig | undefined {
  // `none` (the clusterctl default) or empty: not set.
  const set = (v: string | undefined) => (v && v !== 'none' ? v : undefined);
  flags = { ...flags, url: set(flags.url), caSecret: set(flags.caSecret), credentialsSecret: set(flags.credentialsSecret) };
  if (!flags.url) return undefined;
  const list = (v: string | undefined) => (v ? v.split(',').map((g) => g.trim()).filter(Boolean) : undefined);
  const ref = (name: string | undefined) => (name ? { name, namespace: providerNamespace } : undefined);
  const errors: string[] = [];
  const [source] = readSources([{
    name: 'default', url: flags.url,
    ...(flags.caSecret ? { caSecretRef: ref(flags.caSecret) } : {}),
    ...(flags.credentialsSecret ? { credentialsSecretRef: ref(flags.credentialsSecret) } : {}),
    ...(list(flags.repositories) ? { repositories: list(flags.repositories) } : {}),
    ...(list(flags.tags) ? { tags: list(flags.tags) } : {}),
    ...(flags.interval ? { interval: flags.interval } : {}),
  }], '--default-source', errors) ?? [];
  if (errors.length || !source) throw new Error(errors.join('; ').replace(/--default-source\[0\]\.(\w+)/g, (_, f: string) => `--default-source (${f})`));
  for (const r of [source.caSecretRef, source.credentialsSecretRef]) if (r) r.platform = true;
  return source;
}

/** The schema of `sources`, for DiscoverVariables (the same limits as readSources). */
export const sourcesSchema = (() => {
  const ref = (what: string) => ({
    type: 'object',
    description: `Secret with ${what}, in the Cluster's namespace, or in the extension's namespace when that Secret carries the annotation capi-registry-addon.io/source-hosts listing this source's host.`,
    required: ['name'],
    properties: { name: { type: 'string', description: 'Secret name.', pattern: SOURCE_PATTERNS.secretName, maxLength: 253 }, namespace: { type: 'string', description: 'Its namespace (default: the Cluster\'s).', maxLength: 63 } },
  });
  const globs = (what: string, def: readonly string[]) => ({
    type: 'array',
    description: what,
    items: { type: 'string', pattern: SOURCE_PATTERNS.glob, maxLength: SOURCE_LIMITS.patternLength },
    minItems: 1,
    maxItems: SOURCE_LIMITS.maxPatterns,
    default: [...def],
  });
  return {
    type: 'array',
    description: 'Registries the writer (registry-0) copies from, each on its own interval and at once when this list changes; standbys follow the writer. Absent: the platform\'s default source, if the extension has one (--default-source); [] : none. Multi-arch indexes are copied whole, with the referrers (signatures, SBOMs) stored beside them as digest tags. A source that is down or refuses the credentials removes nothing already copied.',
    maxItems: SOURCE_LIMITS.maxSources,
    items: {
      type: 'object',
      required: ['url'],
      properties: {
        name: { type: 'string', description: 'Names the source in marks, metrics and Events (default: from the host).', pattern: SOURCE_PATTERNS.name, maxLength: 32 },
        url: { type: 'string', description: 'https://host[:port] (http:// for a plain-HTTP registry); docker.io for Docker Hub. No path and no credentials.', pattern: SOURCE_PATTERNS.url, maxLength: 261 },
        caSecretRef: ref('ca.crt, the only CA trusted for this source'),
        credentialsSecretRef: ref('username and password'),
        repositories: globs('Repositories to copy: globs (* any run of characters including /, ? one). An entry without wildcards is read directly; wildcards need the source\'s catalog.', SOURCE_DEFAULTS.repositories),
        tags: globs('Tags to copy, as globs.', SOURCE_DEFAULTS.tags),
        maxTags: { type: 'integer', description: 'The most tags one pass selects; the rest wait, and the mark says the selection was capped.', minimum: 1, maximum: SOURCE_LIMITS.maxTags, default: SOURCE_DEFAULTS.maxTags },
        interval: { type: 'string', description: 'How often to copy (Go duration).', pattern: DURATION_PATTERN, default: SOURCE_DEFAULTS.interval },
        removeUnselected: { type: 'boolean', description: 'Delete the writer\'s copy of a tag this source no longer selects (a pattern taken out), but only while it still holds the source\'s digest (what was pushed over it stays). Default: nothing copied is ever deleted.', default: SOURCE_DEFAULTS.removeUnselected },
      },
    },
  } as const;
})();
