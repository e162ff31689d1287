// BeforeClusterCreate's work: make sure the root CA exists (cert-manager's, or minted once when
// allowed), then copy ONLY its ca.crt into `<cluster>-registry-addon-ca` beside the Cluster, owned by
// it and labelled so `clusterctl move` carries it. A copy that no longer matches the root is the
// `clusterctl move` trap (nodes trust the old CA): refused loudly, never overwritten.
import { KubeError, type SecretClient } from '../kube/client.ts';
import { PkiError } from '../pki/pem.ts';
import { mintRootCa, parseRootCa, ROOT_CA_SECRET, type RootCa } from '../pki/root-ca.ts';
import { clusterCaSecretName, REGISTRY, RenderError } from '../render/metadata.ts';
import { failure, retryLater, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import { clusterRegistry, type ClusterRegistry } from './layout.ts';
import { clusterOwned, ensureCredentials, type Credentials } from './credentials.ts';

export interface SetupDeps {
  management: SecretClient;
  /** Where the root CA Secret lives (the extension's own namespace). */
  providerNamespace: string;
  mintRootCa: boolean;
  /** Owner references name the Cluster in a version the management cluster serves (v1beta1 up to CAPI 1.10). */
  clusterApiVersion: string;
  now: () => Date;
}

/** Seconds CAPI waits before asking again while the root CA is not there yet. */
export const ROOT_CA_RETRY_SECONDS = 30;

/** Reports the errors an operator can act on as a Failure naming the Cluster; anything else is a bug and rethrown. */
export async function asHookResult(cluster: ClusterRef, work: () => Promise<HookResult>): Promise<HookResult> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof KubeError || err instanceof PkiError || err instanceof RenderError) return failure(`Cluster ${cluster.namespace}/${cluster.name}: ${err.message}`);
    throw err;
  }
}

export const isHookResult = (v: unknown): v is HookResult => typeof v === 'object' && v !== null && 'status' in v;

/**
 * The root CA, and its ca.crt copied beside the Cluster. A HookResult instead when the hook must stop
 * here (root CA not there yet, or the move trap).
 */
export async function ensureClusterCa(cluster: ClusterRef, deps: SetupDeps): Promise<RootCa | HookResult> {
  const where = `Secret ${deps.providerNamespace}/${ROOT_CA_SECRET}`;
  let root = await deps.management.getSecret(deps.providerNamespace, ROOT_CA_SECRET);
  if (!root) {
    if (!deps.mintRootCa) {
      return retryLater(ROOT_CA_RETRY_SECONDS, `root CA ${where} not found: install cert-manager and the Certificate from 'capi-registry-addon manifests', or run the extension with --mint-root-ca`);
    }
    const minted = await mintRootCa({ now: deps.now() });
    // Create-if-absent: of concurrent first calls exactly one creates; the others read its CA.
    await deps.management.createSecret({ name: ROOT_CA_SECRET, namespace: deps.providerNamespace, type: 'kubernetes.io/tls', labels: { ...REGISTRY.labels }, data: minted });
    root = await deps.management.getSecret(deps.providerNamespace, ROOT_CA_SECRET);
    if (!root) return retryLater(ROOT_CA_RETRY_SECONDS, `root CA ${where} was created but cannot be read back yet`);
  }
  const parsed = await parseRootCa(root, where);
  const caCrt = root['ca.crt'] || parsed.certPem;
  const copyName = clusterCaSecretName(cluster.name);
  const existing = await deps.management.getSecret(cluster.namespace, copyName);
  if (existing?.['ca.crt'] && existing['ca.crt'].trim() !== caCrt.trim()) {
    return failure(
      `Cluster ${cluster.namespace}/${cluster.name}: Secret ${cluster.namespace}/${copyName} holds a different CA than ${where}: this Cluster's nodes trust the old one. ` +
        `If the management cluster was moved (clusterctl move), copy ${ROOT_CA_SECRET} from the old management cluster instead of creating a new one; ` +
        `to re-key deliberately, delete ${copyName} and roll the nodes`,
    );
  }
  await deps.management.applySecret({ name: copyName, namespace: cluster.namespace, ...clusterOwned(cluster, deps.clusterApiVersion), data: { 'ca.crt': caCrt } });
  return parsed;
}

export interface Prepared {
  registry: ClusterRegistry;
  root: RootCa;
  /** Absent when auth is off. */
  creds?: Credentials;
}

/**
 * Everything on the management side that nodes need before they boot: the root CA, the Cluster's copy
 * of its ca.crt, and (auth on) the credentials the nodes' hosts.toml carries. Undefined when the Cluster
 * has not opted in; a HookResult when the hook must stop here.
 */
export async function prepareCluster(cluster: ClusterRef, deps: SetupDeps): Promise<Prepared | HookResult | undefined> {
  const registry = clusterRegistry(cluster);
  if (!registry) return undefined;
  const root = await ensureClusterCa(cluster, deps);
  if (isHookResult(root)) return root;
  const creds = registry.config.auth.enabled ? await ensureCredentials(cluster, registry.layout, registry.config, deps) : undefined;
  return { registry, root, ...(creds ? { creds } : {}) };
}

/** BeforeClusterCreate: prepareCluster. */
export function setupCluster(cluster: ClusterRef, deps: SetupDeps): Promise<HookResult> {
  return asHookResult(cluster, async () => {
    const prepared = await prepareCluster(cluster, deps);
    return isHookResult(prepared) ? prepared : success();
  });
}
