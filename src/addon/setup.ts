// BeforeClusterCreate's work: make sure the root CA exists (cert-manager's, or minted once when
// allowed) and the Cluster's own registry issuer under it, then put ONLY the issuer's certificate into
// `<cluster>-registry-addon-ca` beside the Cluster, owned by it and labelled so `clusterctl move`
// carries it; and the node script beside it. A copy the root did not issue is the `clusterctl move`
// trap (nodes trust the old CA): refused loudly, never overwritten.
import { KubeError, type SecretClient } from '../kube/client.ts';
import { PkiError } from '../pki/pem.ts';
import { mintClusterIssuer, rootAllowsIssuers, signedBy } from '../pki/cluster-issuer.ts';
import { decodeCertificate } from '../pki/inspect.ts';
import { mintRootCa, parseRootCa, ROOT_CA_SECRET, type RootCa } from '../pki/root-ca.ts';
import { clusterCaSecretName, clusterIssuerSecretName, ISSUER_LABEL, NODE_SCRIPT_KEY, nodeScriptSecretName, REGISTRY, RenderError } from '../render/metadata.ts';
import { enableMirrorScript } from '../render/node-files.ts';
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

/** Conflicts (409) a step starts over from: another replica wrote first; every step re-reads what it compares. */
const CONFLICT_ATTEMPTS = 3;

/**
 * Reports the errors an operator can act on as a Failure naming the Cluster; anything else is a bug and
 * rethrown. A conflict (another replica won a create-if-absent or a resourceVersion precondition) runs
 * the work again from a fresh read, so the loser converges on the winner's objects in the same call.
 */
export async function asHookResult(cluster: ClusterRef, work: () => Promise<HookResult>): Promise<HookResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (err instanceof KubeError && err.status === 409 && attempt < CONFLICT_ATTEMPTS) continue;
      if (err instanceof KubeError || err instanceof PkiError || err instanceof RenderError) return failure(`Cluster ${cluster.namespace}/${cluster.name}: ${err.message}`);
      throw err;
    }
  }
}

export const isHookResult = (v: unknown): v is HookResult => typeof v === 'object' && v !== null && 'status' in v;

/** The root CA Secret, parsed; minted once when allowed. A HookResult when it is not there yet. */
async function rootCa(deps: SetupDeps): Promise<RootCa | HookResult> {
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
  return parseRootCa(root, where);
}

const samePem = (a: string | undefined, b: string) => a?.trim() === b.trim();

/**
 * The CA that signs this Cluster's registry, and its certificate copied beside the Cluster (what the
 * nodes trust). That CA is the Cluster's own issuer (cluster-issuer.ts), made once and kept in the
 * provider namespace; only with a root that forbids intermediates (pathLen 0, minted by older builds)
 * is it the root itself. A copy the root did not issue is the `clusterctl move` trap (nodes trust the
 * old CA): refused loudly, never overwritten. A HookResult when the hook must stop here.
 */
export async function ensureClusterCa(cluster: ClusterRef, deps: SetupDeps): Promise<RootCa | HookResult> {
  const root = await rootCa(deps);
  if (isHookResult(root)) return root;
  const rootWhere = `Secret ${deps.providerNamespace}/${ROOT_CA_SECRET}`;
  const id = `Cluster ${cluster.namespace}/${cluster.name}`;
  const copyName = clusterCaSecretName(cluster.name);
  const issuerName = await clusterIssuerSecretName(cluster.namespace, cluster.name);
  const issuerWhere = `Secret ${deps.providerNamespace}/${issuerName}`;
  const copied = (await deps.management.getSecret(cluster.namespace, copyName))?.['ca.crt'];
  // Clusters from before per-cluster issuers trust the root itself: they move to an issuer, which the root signs.
  const copyIsRoot = samePem(copied, root.certPem);
  if (copied && !copyIsRoot) {
    let copyCert;
    try {
      copyCert = decodeCertificate(copied, `ca.crt of Secret ${cluster.namespace}/${copyName}`);
    } catch {
      copyCert = undefined;
    }
    if (!copyCert || !(await signedBy(copyCert, root.certificate))) {
      return failure(
        `${id}: Secret ${cluster.namespace}/${copyName} holds a different CA than ${rootWhere}: this Cluster's nodes trust the old one. ` +
          `If the management cluster was moved (clusterctl move), copy ${ROOT_CA_SECRET} and the issuer Secrets (label ${ISSUER_LABEL}) from the old management cluster instead of creating new ones; ` +
          `to re-key deliberately, delete ${copyName} and roll the nodes`,
      );
    }
  }
  const publish = async (ca: RootCa) => {
    if (!samePem(copied, ca.certPem)) await deps.management.applySecret({ name: copyName, namespace: cluster.namespace, ...clusterOwned(cluster, deps.clusterApiVersion), data: { 'ca.crt': ca.certPem } });
    return ca;
  };
  if (!rootAllowsIssuers(root)) return publish(root);

  let stored = await deps.management.getSecret(deps.providerNamespace, issuerName);
  if (!stored) {
    if (copied && !copyIsRoot) {
      return failure(`${id}: ${issuerWhere} (the Cluster's registry issuer) is missing while its nodes trust the issuer in ${copyName}: restore it (label ${ISSUER_LABEL}) from a backup or the old management cluster; to re-key deliberately, delete ${copyName} and roll the nodes`);
    }
    const minted = await mintClusterIssuer(root, { cluster: `${cluster.namespace}/${cluster.name}`, now: deps.now() });
    // Create-if-absent: concurrent first calls agree on one issuer.
    await deps.management.createSecret({
      name: issuerName, namespace: deps.providerNamespace, type: 'kubernetes.io/tls',
      labels: { ...REGISTRY.labels, [ISSUER_LABEL]: '', 'cluster.x-k8s.io/cluster-name': cluster.name, 'capi-registry-addon.io/cluster-namespace': cluster.namespace },
      data: minted,
    });
    stored = await deps.management.getSecret(deps.providerNamespace, issuerName);
    if (!stored) return retryLater(ROOT_CA_RETRY_SECONDS, `${issuerWhere} was created but cannot be read back yet`);
  }
  const issuer = await parseRootCa(stored, issuerWhere);
  if (!(await signedBy(issuer.certificate, root.certificate))) {
    return failure(`${id}: ${issuerWhere} was not issued by ${rootWhere} (the root was replaced?): copy the root from where the issuer was made, or delete both ${issuerName} and ${copyName} and roll the nodes to re-key`);
  }
  if (copied && !copyIsRoot && !samePem(copied, issuer.certPem)) {
    return failure(`${id}: Secret ${cluster.namespace}/${copyName} holds another issuer than ${issuerWhere}: this Cluster's nodes trust that one; restore the matching issuer Secret, or delete ${copyName} and roll the nodes to re-key`);
  }
  return publish(issuer);
}

/** The node script beside the Cluster (its nodes read it via contentFrom); written only when it differs. */
async function ensureNodeScript(cluster: ClusterRef, deps: SetupDeps): Promise<void> {
  const name = nodeScriptSecretName(cluster.name);
  await deps.management.ensureSecret({ name, namespace: cluster.namespace, ...clusterOwned(cluster, deps.clusterApiVersion), data: { [NODE_SCRIPT_KEY]: enableMirrorScript() } });
}

export interface Prepared {
  registry: ClusterRegistry;
  /** The CA that signs this Cluster's registry certificate (its issuer; the root only for pathLen-0 roots). */
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
  await ensureNodeScript(cluster, deps);
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
