// The workload-cluster Secrets (AfterControlPlaneInitialized, renewed at BeforeClusterUpgrade): the
// registry's TLS Secret, issued by the root CA, and the HTTP secret all replicas share. Written straight
// to the workload cluster through CAPI's kubeconfig Secret, so no key passes through Helm values or the
// management cluster.
import { KubeError, type KubeClient } from '../kube/client.ts';
import type { WorkloadClients } from '../kube/workload-clients.ts';
import { endpointMismatch, KubeconfigRefused, readWorkloadKubeconfig, type WorkloadKubeconfig } from '../kube/workload-kubeconfig.ts';
import { writeWorkloadAuth, type Credentials } from './credentials.ts';
import type { RootCa } from '../pki/root-ca.ts';
import { issueServerCertificate, needsRenewal, type RenewalDecision } from '../pki/server-cert.ts';
import { REGISTRY, POD, serverCertSans, type RegistryLayout } from '../render/metadata.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import { sha256Hex } from '../render/digest.ts';
import { certificateFacts, decodeCertificate } from '../pki/inspect.ts';
import { hexFromBytes } from '../lib/bytes.ts';
import type { Anchor } from '../pki/trust-bundle.ts';
import { previousSigner } from './trust-rollover.ts';

export interface WorkloadDeps {
  management: KubeClient;
  workloadClients: WorkloadClients;
  now: () => Date;
}

export interface WorkloadSecretsResult {
  renewal: RenewalDecision;
  /** The served tls.crt (the chain: leaf, then its issuer). */
  tlsCrt: string;
  /** SHA-256 of the served tls.crt, for the pod-template annotation that rolls the pods. */
  tlsCertSha256: string;
  /** When the served certificate expires (for the expiry metric). */
  notAfter: Date;
  /** SHA-256 of the htpasswd file, when auth is on (pod annotation). */
  authSha256?: string;
}

export const kubeconfigSecret = (cluster: string) => `${cluster}-kubeconfig`;

/** A client for the Cluster's workload API server, from CAPI's kubeconfig Secret. */
export async function workloadClientFor(cluster: ClusterRef, deps: Pick<WorkloadDeps, 'management' | 'workloadClients'>): Promise<KubeClient> {
  const name = kubeconfigSecret(cluster.name);
  const stored = await deps.management.readSecret(cluster.namespace, name);
  if (!stored?.data.value) {
    throw new KubeError(`Secret ${cluster.namespace}/${name} (key value) not found: Cluster API writes it once the control plane is initialized; it is retried`);
  }
  let config: WorkloadKubeconfig;
  try {
    config = readWorkloadKubeconfig(stored.data.value);
  } catch (err) {
    if (err instanceof KubeconfigRefused) throw new KubeError(`Secret ${cluster.namespace}/${name} refused: ${err.message}`);
    throw err;
  }
  const spec = (cluster.raw.spec ?? {}) as { controlPlaneEndpoint?: { host?: unknown; port?: unknown } };
  const mismatch = endpointMismatch(config.server, spec.controlPlaneEndpoint);
  if (mismatch) throw new KubeError(`Secret ${cluster.namespace}/${name} refused: ${mismatch}`);
  return deps.workloadClients.get({ namespace: cluster.namespace, name, resourceVersion: stored.resourceVersion }, config);
}

export interface WorkloadSecretsOptions {
  /** An upgrade to this version is starting (BeforeClusterUpgrade): issue a fresh certificate whatever the old one's state. */
  upgradeTo?: string;
  /** A trust rollover runs: a sound certificate from one of these earlier issuers is kept (not renewed, not even for an upgrade). */
  keepSignedBy?: Anchor[];
  /** The workload client this pass already made (else it is made from CAPI's kubeconfig Secret). */
  workload?: KubeClient;
  /** The registry's namespace is known to exist (the pass's list of its Secrets found some): not read again. */
  namespaceExists?: boolean;
}

export async function writeWorkloadSecrets(cluster: ClusterRef, layout: RegistryLayout, root: RootCa, deps: WorkloadDeps, creds?: Credentials, opts: WorkloadSecretsOptions = {}): Promise<WorkloadSecretsResult> {
  const workload = opts.workload ?? (await workloadClientFor(cluster, deps));
  // Steady state writes nothing: every write below is preceded by a comparison.
  if (!opts.namespaceExists) await workload.ensureObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: REGISTRY.namespace, labels: { ...REGISTRY.labels } } });

  const sans = serverCertSans(layout);
  const stored = await workload.readSecret(REGISTRY.namespace, REGISTRY.tlsSecret);
  const current = stored?.data;
  const policy = { now: deps.now(), dnsNames: sans.dnsNames, ipAddresses: sans.ipAddresses };
  let checked = await needsRenewal(current, root, policy);
  // During a trust rollover a sound certificate from an earlier issuer stays: older nodes trust only that one.
  const earlier = checked.renew && opts.keepSignedBy ? await previousSigner(current?.['tls.crt'], opts.keepSignedBy) : undefined;
  if (earlier) checked = await needsRenewal(current, earlier, policy);
  const renewal = opts.upgradeTo && !earlier ? { renew: true, reasons: [...checked.reasons, `upgrade to ${opts.upgradeTo}: a fresh certificate for every upgrade`] } : checked;
  let tlsCrt = current?.['tls.crt'] ?? '';
  if (renewal.renew) {
    const issued = await issueServerCertificate(root, { ...sans, now: deps.now() });
    const secret = { name: REGISTRY.tlsSecret, namespace: REGISTRY.namespace, type: 'kubernetes.io/tls', labels: { ...REGISTRY.labels }, data: issued };
    // Against the version just read (or create-if-absent): of two replicas issuing at once one wins,
    // the other gets a conflict and retries from the winner's certificate, so a Cluster has one.
    const raced = stored ? await workload.applySecret({ ...secret, resourceVersion: stored.resourceVersion }).then(() => false) : (await workload.createSecret(secret)) === 'exists';
    if (raced) throw new KubeError(`Secret ${REGISTRY.namespace}/${REGISTRY.tlsSecret} was created at the same time by another replica: it is retried`, 409);
    tlsCrt = issued['tls.crt'];
  }
  // Create-if-absent: replicas must share one value for the life of the registry.
  if (!(await workload.getSecret(REGISTRY.namespace, REGISTRY.httpSecret))) await workload.createSecret({
    name: REGISTRY.httpSecret,
    namespace: REGISTRY.namespace,
    labels: { ...REGISTRY.labels },
    data: { [POD.httpSecretKey]: hexFromBytes(crypto.getRandomValues(new Uint8Array(32))) },
  });
  const { notAfter } = certificateFacts(decodeCertificate(tlsCrt, `Secret ${REGISTRY.namespace}/${REGISTRY.tlsSecret} tls.crt`));
  const authSha256 = creds ? await writeWorkloadAuth(workload, creds) : undefined;
  return { renewal, tlsCrt, tlsCertSha256: await sha256Hex(tlsCrt), notAfter, ...(authSha256 ? { authSha256 } : {}) };
}
