// Registry credentials, per Cluster, made with WebCrypto randomness (256-bit passwords):
//   node  — containerd on every node (a header in hosts.toml) and the in-pod regsync sidecars
//   push  — people and installers (`docker login`), a kubernetes.io/basic-auth Secret
// Both live in the Cluster's namespace, owned by the Cluster and labelled for `clusterctl move`. The
// workload cluster gets only bcrypt hashes (htpasswd) and regsync's copy of the node credential.
// Passwords are made once (create-if-absent: concurrent first calls agree) and never logged.
import type { SecretClient, SecretObject } from '../kube/client.ts';
import { b64encode, base64FromText } from '../pki/pem.ts';
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
}

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
  return b64encode(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export const basicAuthorization = (c: Credential) => `Basic ${base64FromText(`${c.username}:${c.password}`)}`;

export interface CredentialDeps {
  management: SecretClient;
  clusterApiVersion: string;
}

/** Labels and owner of every Secret the addon keeps beside a Cluster. */
export function clusterOwned(cluster: ClusterRef, clusterApiVersion: string): Pick<SecretObject, 'labels' | 'ownerReferences'> {
  return {
    labels: { 'cluster.x-k8s.io/cluster-name': cluster.name, 'clusterctl.cluster.x-k8s.io/move': '', ...REGISTRY.labels },
    ...(cluster.uid ? { ownerReferences: [{ apiVersion: clusterApiVersion, kind: 'Cluster', name: cluster.name, uid: cluster.uid }] } : {}),
  };
}

async function ensureCredential(cluster: ClusterRef, name: string, username: string, type: string, deps: CredentialDeps): Promise<Credential> {
  const owned = clusterOwned(cluster, deps.clusterApiVersion);
  const read = async () => {
    const data = await deps.management.getSecret(cluster.namespace, name);
    return data?.username && data.password ? { username: data.username, password: data.password } : undefined;
  };
  const existing = await read();
  if (existing) return existing;
  await deps.management.createSecret({ name, namespace: cluster.namespace, type, ...owned, data: { username, password: newPassword() } });
  const stored = await read();
  if (!stored) throw new Error(`Secret ${cluster.namespace}/${name} was created but holds no username/password`);
  return stored;
}

/** Both credentials, and the node Secret's hosts.toml rendered for the current layout. */
export async function ensureCredentials(cluster: ClusterRef, layout: RegistryLayout, config: RegistryConfig, deps: CredentialDeps): Promise<Credentials> {
  const nodeName = nodeCredentialSecretName(cluster.name);
  const node = await ensureCredential(cluster, nodeName, 'node', 'Opaque', deps);
  const push = await ensureCredential(cluster, pushCredentialSecretName(cluster.name), 'push', 'kubernetes.io/basic-auth', deps);
  // The hosts.toml nodes read through contentFrom; re-rendered on every call (the Service IP or the
  // dial timeout may change), written only when it differs.
  const toml = hostsToml(layout, config, basicAuthorization(node));
  const current = await deps.management.getSecret(cluster.namespace, nodeName);
  if (current?.['hosts.toml'] !== toml) {
    await deps.management.applySecret({ name: nodeName, namespace: cluster.namespace, ...clusterOwned(cluster, deps.clusterApiVersion), data: { ...node, 'hosts.toml': toml } });
  }
  return { node, push };
}

/** The htpasswd file for the credentials, reusing `current` when every entry still verifies (no rewrite, no pod roll). */
export function htpasswdFor(creds: Credentials, current: string | undefined): string {
  const entries = new Map((current ?? '').split('\n').filter(Boolean).map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)] as const));
  const wanted = [creds.node, creds.push];
  const fresh = entries.size === wanted.length && wanted.every((c) => bcryptVerify(c.password, entries.get(c.username) ?? ''));
  if (fresh && current) return current;
  return wanted.map((c) => `${c.username}:${bcryptHash(c.password, BCRYPT_COST)}`).join('\n') + '\n';
}

/** Writes the workload-side auth Secrets; returns the htpasswd checksum for the pod annotation. */
export async function writeWorkloadAuth(workload: SecretClient, creds: Credentials): Promise<string> {
  const current = await workload.getSecret(REGISTRY.namespace, REGISTRY.authSecret);
  const htpasswd = htpasswdFor(creds, current?.htpasswd);
  if (htpasswd !== current?.htpasswd) {
    await workload.applySecret({ name: REGISTRY.authSecret, namespace: REGISTRY.namespace, labels: { ...REGISTRY.labels }, data: { htpasswd } });
  }
  await workload.applySecret({ name: REGISTRY.regsyncAuthSecret, namespace: REGISTRY.namespace, labels: { ...REGISTRY.labels }, data: { ...creds.node } });
  return sha256Hex(htpasswd);
}
