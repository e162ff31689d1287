// BeforeClusterCreate's work: make sure the root CA exists (cert-manager's, or minted once when
// allowed) and the Cluster's own registry issuer under it, then put ONLY the issuer's certificate into
// `<cluster>-registry-addon-ca` beside the Cluster, owned by it and labelled so `clusterctl move`
// carries it; and the node script beside it. A registry still served by another issuer (after
// `clusterctl move`) keeps that issuer in the copy beside the new one until every node has both
// (trust-rollover.ts); nothing else anyone writes into the copy is kept.
import { KubeError, type KubeClient } from '../kube/client.ts';
import { PkiError } from '../pki/pem.ts';
import { mintClusterIssuer, rootAllowsIssuers, signedBy } from '../pki/cluster-issuer.ts';
import { bundleAnchors, trustBundle } from '../pki/trust-bundle.ts';
import { mintRootCa, parseRootCa, ROOT_CA_SECRET, type RootCa } from '../pki/root-ca.ts';
import { clusterCaSecretName, clusterIssuerSecretName, ISSUER_LABEL, rolloverRecordSecretName, NODE_SCRIPT_KEY, nodeScriptSecretName, REGISTRY, RenderError, ROLLOVER_SINCE_KEY } from '../render/metadata.ts';
import type { Images } from '../render/config.ts';
import { enableMirrorScript } from '../render/node-files.ts';
import { failure, retryLater, success, type ClusterRef, type HookResult } from '../runtime-sdk/types.ts';
import { clusterRegistry, type ClusterRegistry } from './layout.ts';
import { clusterOwned, ensureCredentials, type Credentials } from './credentials.ts';
import { currentRollover, type TrustRollover } from './trust-rollover.ts';
import type { SourceConfig } from '../render/sources.ts';

export interface SetupDeps {
  management: KubeClient;
  /** The management API server itself, uncached (management may read through watch caches): what a hook checks a body against. */
  live?: KubeClient;
  /** Where the root CA Secret lives (the extension's own namespace). */
  providerNamespace: string;
  mintRootCa: boolean;
  /** Owner references name the Cluster in a version the management cluster serves (v1beta1 up to CAPI 1.10). */
  clusterApiVersion: string;
  /** The images a Cluster that names none runs (default DEFAULT_IMAGES). */
  images?: Images;
  /** The platform's default source registry (--default-source), for a Cluster that names no `sources`. */
  defaultSource?: SourceConfig;
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

export interface ClusterCa {
  /** Signs the Cluster's registry certificate: its issuer (the root itself only for pathLen-0 roots). */
  signer: RootCa;
  /** Earlier issuers the Cluster's nodes still trust: set while a trust rollover runs (trust-rollover.ts). */
  rollover?: TrustRollover;
}

/**
 * The CA that signs this Cluster's registry, and the trust bundle copied beside the Cluster (what its
 * nodes trust). That CA is the Cluster's own issuer (cluster-issuer.ts), made once and kept in the
 * provider namespace; only with a root that forbids intermediates (pathLen 0, minted by older builds)
 * is it the root itself. A registry served by another issuer (after `clusterctl move` the new management
 * cluster has a new root and no issuer for the Cluster; `servedChain` reads the served chain) is not cut
 * off: the new issuer is put in front of the recorded old one and a trust rollover starts. A HookResult
 * when the hook must stop here.
 */
export async function ensureClusterCa(cluster: ClusterRef, deps: SetupDeps, servedChain?: () => Promise<string | undefined>): Promise<ClusterCa | HookResult> {
  const rootWhere = `Secret ${deps.providerNamespace}/${ROOT_CA_SECRET}`;
  const id = `Cluster ${cluster.namespace}/${cluster.name}`;
  const copyName = clusterCaSecretName(cluster.name);
  const issuerName = await clusterIssuerSecretName(cluster.namespace, cluster.name);
  const issuerWhere = `Secret ${deps.providerNamespace}/${issuerName}`;
  // The reads do not depend on each other: one round trip, not four (a hook's answer waits for each).
  const [root, copy, issuerStored, record] = await Promise.all([
    rootCa(deps),
    deps.management.getSecret(cluster.namespace, copyName),
    deps.management.getSecret(deps.providerNamespace, issuerName),
    deps.management.getSecret(deps.providerNamespace, await rolloverRecordSecretName(cluster.namespace, cluster.name)),
  ]);
  if (isHookResult(root)) return root;
  const trusted = bundleAnchors(copy?.['ca.crt']);
  // Clusters from before per-cluster issuers trust the root itself: the issuer chains to it (the registry
  // serves the chain), so their nodes accept the issuer's certificates without a rollover.
  const trustsRoot = trusted.length === 1 && trusted[0]!.pem === bundleAnchors(root.certPem)[0]?.pem;
  // What the copy says beyond that is never believed (trust-rollover.ts): the rollover's record is.
  const publish = async (ca: RootCa): Promise<ClusterCa> => {
    // What the copy says of the served issuer: it trusts these (or, garbled, nothing readable: no say); no copy at all, no rollover.
    const copyTrusts = !copy?.['ca.crt'] ? [] : trusted.length ? trusted : undefined;
    const rollover = trustsRoot ? undefined : await currentRollover(cluster, ca, deps, servedChain, copyTrusts, record);
    const data: Record<string, string> = rollover ? { 'ca.crt': trustBundle(ca.certPem, rollover.previous), [ROLLOVER_SINCE_KEY]: rollover.since.toISOString() } : { 'ca.crt': ca.certPem };
    await deps.management.ensureSecret({ name: copyName, namespace: cluster.namespace, ...clusterOwned(cluster, deps.clusterApiVersion), data }, copy);
    return rollover ? { signer: ca, rollover } : { signer: ca };
  };
  if (!rootAllowsIssuers(root)) return publish(root);

  let stored = issuerStored;
  if (!stored) {
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
    return failure(`${id}: ${issuerWhere} was not issued by ${rootWhere} (the root was replaced with another key?): put that root back, or delete ${issuerName} so that a new issuer is made and the Cluster's trust rolls over to it`);
  }
  return publish(issuer);
}

/** The node script beside the Cluster (its nodes read it via contentFrom); written only when it differs. */
async function ensureNodeScript(cluster: ClusterRef, deps: SetupDeps): Promise<void> {
  const name = nodeScriptSecretName(cluster.name);
  await deps.management.ensureSecret({ name, namespace: cluster.namespace, ...clusterOwned(cluster, deps.clusterApiVersion), data: { [NODE_SCRIPT_KEY]: enableMirrorScript() } });
}

export interface Prepared extends ClusterCa {
  registry: ClusterRegistry;
  /** Absent when auth is off. */
  creds?: Credentials;
}

/**
 * Everything on the management side that nodes need before they boot: the root CA, the Cluster's copy
 * of its ca.crt, and (auth on) the credentials the nodes' hosts.toml carries. Undefined when the Cluster
 * has not opted in; a HookResult when the hook must stop here.
 */
export async function prepareCluster(cluster: ClusterRef, deps: SetupDeps, servedChain?: () => Promise<string | undefined>): Promise<Prepared | HookResult | undefined> {
  const registry = clusterRegistry(cluster, deps.images, deps.defaultSource);
  if (!registry) return undefined;
  // Independent of each other: the CA copy, the node script and the credentials at once.
  const [ca, , creds] = await Promise.all([
    ensureClusterCa(cluster, deps, servedChain),
    ensureNodeScript(cluster, deps),
    registry.config.auth.enabled ? ensureCredentials(cluster, registry.layout, registry.config, deps) : undefined,
  ]);
  if (isHookResult(ca)) return ca;
  return { registry, ...ca, ...(creds ? { creds } : {}) };
}

/** BeforeClusterCreate: prepareCluster. */
export function setupCluster(cluster: ClusterRef, deps: SetupDeps): Promise<HookResult> {
  return asHookResult(cluster, async () => {
    const prepared = await prepareCluster(cluster, deps);
    return isHookResult(prepared) ? prepared : success();
  });
}
