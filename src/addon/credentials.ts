// Registry credentials, per Cluster, made with WebCrypto randomness (256-bit passwords):
//   node  — containerd on every node (a header in hosts.toml) and the in-pod sync sidecars (regbot)
//   push  — people and installers (`docker login`), a kubernetes.io/basic-auth Secret
// Both live in the Cluster's namespace, owned by the Cluster and labelled for `clusterctl move`. The
// workload cluster gets only bcrypt hashes (htpasswd) and the sync sidecars' copy of the node credential.
// Passwords are made once (create-if-absent: concurrent first calls agree) and never logged.
import { KubeError, sameSecretData, type KubeClient, type SecretObject } from '../kube/client.ts';
import { base64FromBytes, base64FromText } from '../lib/bytes.ts';
import { sha256Hex } from '../render/digest.ts';
import { nodeCredentialSecretName, pushCredentialSecretName, REGISTRY, type RegistryLayout } from '../render/metadata.ts';
import type { RegistryConfig } from '../render/config.ts';
import { hostsToml } from '../render/node-files.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { bcryptHash, bcryptVerify } from '../wasm/bcrypt.ts';

export interface Credential {
  username: string;
  password: string;
}
export interface Credentials {
  node: Credential;
  push: Credential;
  /** Credentials replaced by the last rotation: still valid until the next one, so nodes not yet rolled keep pulling. */
  previous: Credential[];
}

/**
 * Rotation: set this annotation on the Cluster to a new value (e.g. a date). The next BeforeClusterUpgrade
 * or day-2 convergence makes new credentials (`node-2`, `push-2`, ...), keeps the replaced ones valid,
 * and new nodes get the new header; roll the nodes before rotating again, which retires the old pair.
 */
export const ROTATE_ANNOTATION = 'capi-registry-addon.io/rotate-credentials';

/**
 * bcrypt cost of the htpasswd entries. Distribution checks the hash on EVERY request (no cache), so the
 * cost is paid per blob a node pulls. The passwords are 256-bit random strings, so guessing them is out
 * of reach whatever the cost; the cost only protects weak passwords, which these are not. Hence the
 * minimum bcrypt allows (4). `npm run bench` measures the registry CPU per pulled blob at 4 and at Go's
 * default 10 (README, Performance).
 */
export const BCRYPT_COST = 4;

/** 32 random bytes as base64url: 256 bits, 43 characters, safe in URLs, headers and htpasswd. */
export function newPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return base64FromBytes(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export const basicAuthorization = (c: Credential) => `Basic ${base64FromText(`${c.username}:${c.password}`)}`;

export interface CredentialDeps {
  management: KubeClient;
  clusterApiVersion: string;
}

/** Labels and owner of every Secret the addon keeps beside a Cluster. */
export function clusterOwned(cluster: ClusterRef, clusterApiVersion: string): Pick<SecretObject, 'labels' | 'ownerReferences'> {
  return {
    labels: { 'cluster.x-k8s.io/cluster-name': cluster.name, 'clusterctl.cluster.x-k8s.io/move': '', ...REGISTRY.labels },
    ...(cluster.uid ? { ownerReferences: [{ apiVersion: clusterApiVersion, kind: 'Cluster', name: cluster.name, uid: cluster.uid }] } : {}),
  };
}

type Stored = Record<string, string>;

/** The stored credential (made once), rotated when the Cluster asks for it: the Secret data to keep, and what is stored now. */
async function ensureCredential(cluster: ClusterRef, name: string, base: string, type: string, rotation: string, deps: CredentialDeps): Promise<{ keep: Stored; stored: Stored; resourceVersion: string }> {
  let read = await deps.management.readSecret(cluster.namespace, name);
  if (!read?.data.username || !read.data.password) {
    // Create-if-absent: of concurrent first calls one creates, the others read its password.
    await deps.management.createSecret({ name, namespace: cluster.namespace, type, ...clusterOwned(cluster, deps.clusterApiVersion), data: { username: base, password: newPassword(), ...(rotation ? { rotation } : {}) } });
    read = await deps.management.readSecret(cluster.namespace, name);
    if (!read?.data.username || !read.data.password) throw new KubeError(`Secret ${cluster.namespace}/${name} was created but holds no username/password: it is retried`);
  }
  const { resourceVersion } = read;
  const data = read.data as Stored & { username: string; password: string };
  const keep: Stored = { username: data.username, password: data.password };
  if (data['previous-username'] && data['previous-password']) Object.assign(keep, { 'previous-username': data['previous-username'], 'previous-password': data['previous-password'] });
  if (data.rotation) keep.rotation = data.rotation;
  if (rotation && rotation !== data.rotation) {
    const generation = Number(/-(\d+)$/.exec(data.username)?.[1] ?? 1) + 1;
    return { keep: { username: `${base}-${generation}`, password: newPassword(), 'previous-username': data.username, 'previous-password': data.password, rotation }, stored: data, resourceVersion };
  }
  return { keep, stored: data, resourceVersion };
}

const credentialOf = (d: Stored): Credential => ({ username: d.username!, password: d.password! });
const previousOf = (d: Stored): Credential[] => (d['previous-username'] && d['previous-password'] ? [{ username: d['previous-username'], password: d['previous-password'] }] : []);

/** Both credentials (rotated when the Cluster asks), and the node Secret's hosts.toml for the current layout. */
export async function ensureCredentials(cluster: ClusterRef, layout: RegistryLayout, config: RegistryConfig, deps: CredentialDeps): Promise<Credentials> {
  const annotations = ((cluster.raw.metadata ?? {}) as { annotations?: Record<string, string> }).annotations ?? {};
  const rotation = annotations[ROTATE_ANNOTATION] ?? '';
  const nodeName = nodeCredentialSecretName(cluster.name);
  const pushName = pushCredentialSecretName(cluster.name);
  // Two independent Secrets: read (and, when new, created) at once.
  const [node, push] = await Promise.all([
    ensureCredential(cluster, nodeName, 'node', 'Opaque', rotation, deps),
    ensureCredential(cluster, pushName, 'push', 'kubernetes.io/basic-auth', rotation, deps),
  ]);
  // hosts.toml is re-rendered on every call (the Service IP or the dial timeout may change); each
  // Secret is written only when its content differs from what was just read.
  const nodeData = { ...node.keep, 'hosts.toml': hostsToml(layout, config, basicAuthorization(credentialOf(node.keep))) };
  const owned = clusterOwned(cluster, deps.clusterApiVersion);
  // Written against the version just read: when two replicas rotate at once, one write wins and the
  // other gets a conflict (409) and retries from what won, so nodes and the registry never get
  // passwords from different replicas.
  for (const [name, type, data, read] of [[nodeName, 'Opaque', nodeData, node], [pushName, 'kubernetes.io/basic-auth', push.keep, push]] as const) {
    if (!sameSecretData(read.stored, data)) await deps.management.applySecret({ name, namespace: cluster.namespace, type, ...owned, data, resourceVersion: read.resourceVersion });
  }
  return { node: credentialOf(node.keep), push: credentialOf(push.keep), previous: [...previousOf(node.keep), ...previousOf(push.keep)] };
}

/** The cost field of a `$2a$`/`$2b$`/`$2y$` hash, or undefined. */
const bcryptCostOf = (hash: string) => Number(/^\$2[aby]\$(\d{2})\$/.exec(hash)?.[1] ?? NaN);

/**
 * The htpasswd file for the credentials, reusing `current` when every entry still verifies (no rewrite,
 * no pod roll). `current` comes from the workload cluster, whose admins are not us: an entry is checked
 * only when it has exactly our cost, so a planted cost-31 hash (116 hours of CPU) is simply rewritten,
 * and a file with more entries than we write is rewritten without checking any.
 */
export function htpasswdFor(creds: Credentials, current: string | undefined): string {
  const wanted = [creds.node, creds.push, ...creds.previous];
  const lines = (current ?? '').split('\n', wanted.length + 2).filter(Boolean);
  const entries = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)] as const));
  const fresh = !!current && lines.length === wanted.length && entries.size === wanted.length && wanted.every((c) => {
    const hash = entries.get(c.username) ?? '';
    return bcryptCostOf(hash) === BCRYPT_COST && bcryptVerify(c.password, hash);
  });
  if (fresh) return current!;
  return wanted.map((c) => `${c.username}:${bcryptHash(c.password, BCRYPT_COST)}`).join('\n') + '\n';
}

/** Writes the workload-side auth Secrets; returns the htpasswd checksum for the pod annotation. */
export async function writeWorkloadAuth(workload: KubeClient, creds: Credentials): Promise<string> {
  const current = await workload.getSecret(REGISTRY.namespace, REGISTRY.authSecret);
  const htpasswd = htpasswdFor(creds, current?.htpasswd);
  if (htpasswd !== current?.htpasswd) {
    await workload.applySecret({ name: REGISTRY.authSecret, namespace: REGISTRY.namespace, labels: { ...REGISTRY.labels }, data: { htpasswd } });
  }
  await workload.ensureSecret({ name: REGISTRY.syncAuthSecret, namespace: REGISTRY.namespace, labels: { ...REGISTRY.labels }, data: { ...creds.node } });
  return sha256Hex(htpasswd);
}
