// A workload cluster's kubeconfig is data written into the Cluster's namespace: whoever can write a
// Secret there can write it. So it is read as data only — a server URL, CA data, and client
// certificate/key data or a bearer token, the shapes CAPI writes — and every field that would make the
// extension run a command (exec, auth-provider), read a file on its own disk, go through a proxy, or skip
// TLS verification is refused by name, before @kubernetes/client-node ever sees the text.
import * as yaml from 'js-yaml';

export class KubeconfigRefused extends Error {}

/** What a workload client is built from: nothing else survives this check. */
export interface WorkloadKubeconfig {
  server: string;
  caData: string;
  /** Either a client certificate and key (CAPI's kubeadm control plane) or a token. */
  certData?: string;
  keyData?: string;
  token?: string;
  tlsServerName?: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// Keys allowed per section; anything else is refused by name (an unknown key may be a new way in).
const CLUSTER_KEYS = new Set(['server', 'certificate-authority-data', 'tls-server-name', 'extensions']);
const USER_KEYS = new Set(['client-certificate-data', 'client-key-data', 'token', 'extensions']);
const CONTEXT_KEYS = new Set(['cluster', 'user', 'namespace', 'extensions']);

function named(list: unknown, section: string, name: string): Json {
  if (!Array.isArray(list)) throw new KubeconfigRefused(`${section} must be a list`);
  const entry = list.find((e) => isObject(e) && e.name === name);
  if (!isObject(entry)) throw new KubeconfigRefused(`${section} has no entry named ${JSON.stringify(name)}`);
  const key = section.slice(0, -1); // clusters -> cluster
  if (!isObject(entry[key])) throw new KubeconfigRefused(`${section}[${JSON.stringify(name)}].${key} is missing`);
  return entry[key] as Json;
}

function onlyKeys(obj: Json, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) throw new KubeconfigRefused(`${where}.${key} is not accepted: a workload kubeconfig may carry only server, certificate-authority-data, client-certificate-data/client-key-data or token (exec, auth-provider, file paths, proxies and insecure-skip-tls-verify are refused)`);
  }
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * Checks `text` (YAML or JSON) and returns the data of its current context. Throws KubeconfigRefused
 * naming the field at fault.
 */
export function readWorkloadKubeconfig(text: string): WorkloadKubeconfig {
  let doc: unknown;
  try {
    // JSON_SCHEMA: no YAML tags or custom types, plain data only.
    doc = yaml.load(text, { schema: yaml.JSON_SCHEMA });
  } catch {
    throw new KubeconfigRefused('the kubeconfig is not valid YAML');
  }
  if (!isObject(doc)) throw new KubeconfigRefused('the kubeconfig is not a YAML mapping');
  const current = doc['current-context'];
  if (!nonEmpty(current)) throw new KubeconfigRefused('current-context is missing');
  const context = named(doc.contexts, 'contexts', current);
  onlyKeys(context, CONTEXT_KEYS, `contexts[${JSON.stringify(current)}].context`);
  if (!nonEmpty(context.cluster) || !nonEmpty(context.user)) throw new KubeconfigRefused('the current context must name a cluster and a user');
  const cluster = named(doc.clusters, 'clusters', context.cluster);
  onlyKeys(cluster, CLUSTER_KEYS, `clusters[${JSON.stringify(context.cluster)}].cluster`);
  const user = named(doc.users, 'users', context.user);
  onlyKeys(user, USER_KEYS, `users[${JSON.stringify(context.user)}].user`);

  const server = cluster.server;
  if (!nonEmpty(server)) throw new KubeconfigRefused('cluster.server is missing');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeconfigRefused(`cluster.server ${JSON.stringify(server.slice(0, 100))} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new KubeconfigRefused('cluster.server must be an https:// URL');
  if (url.username || url.password) throw new KubeconfigRefused('cluster.server must not carry credentials');
  if (!nonEmpty(cluster['certificate-authority-data'])) throw new KubeconfigRefused('cluster.certificate-authority-data is missing: the workload API server must be verified against the CA CAPI wrote');
  const out: WorkloadKubeconfig = { server, caData: cluster['certificate-authority-data'] };
  if (nonEmpty(cluster['tls-server-name'])) out.tlsServerName = cluster['tls-server-name'];
  if (nonEmpty(user['client-certificate-data']) && nonEmpty(user['client-key-data'])) {
    out.certData = user['client-certificate-data'];
    out.keyData = user['client-key-data'];
  } else if (nonEmpty(user.token)) {
    out.token = user.token;
  } else {
    throw new KubeconfigRefused('the user has no client-certificate-data/client-key-data pair and no token');
  }
  return out;
}

/**
 * The workload API server a kubeconfig may aim at: the Cluster's own spec.controlPlaneEndpoint, when
 * the Cluster has one (CAPI writes the kubeconfig from it). Undefined when allowed, else the reason.
 */
export function endpointMismatch(server: string, endpoint: { host?: unknown; port?: unknown } | undefined): string | undefined {
  if (!endpoint || !nonEmpty(endpoint.host)) return undefined;
  const url = new URL(server);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : 443;
  const want = String(endpoint.host).replace(/^\[|\]$/g, '');
  const wantPort = typeof endpoint.port === 'number' && endpoint.port > 0 ? endpoint.port : 443;
  if (host.toLowerCase() === want.toLowerCase() && port === wantPort) return undefined;
  return `the kubeconfig's server ${url.host} is not the Cluster's spec.controlPlaneEndpoint ${want}:${wantPort}`;
}
