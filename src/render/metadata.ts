// Every name, port and address of the registry lives here, once: the renderers, the PKI (SANs) and
// the hooks all read them from this module.
import { sha256Hex } from './digest.ts';
import { formatIp, parseIp } from '../lib/ip.ts';

export const REGISTRY = {
  namespace: 'capi-registry',
  /** StatefulSet, its pods (`registry-0`…) and the writer's ClusterIP Service (the push endpoint, every node's first mirror host). */
  name: 'registry',
  /** Writes go to one replica, pod `registry-0`: read-your-push holds on every node and each tag has one state. */
  writerPod: 'registry-0',
  /** Every ready replica, at a second fixed ClusterIP: each node's second mirror host, for when the writer is down. */
  standbyService: 'registry-standby',
  headlessService: 'registry-headless',
  tlsSecret: 'registry-tls',
  httpSecret: 'registry-http-secret',
  /** htpasswd file (bcrypt) Distribution checks every request against. */
  authSecret: 'registry-auth',
  /** The credential the sync sidecar (regbot) reads the writer and writes its own replica with (name kept from the regsync days). */
  syncAuthSecret: 'registry-regsync-auth',
  authRealm: 'capi-registry',
  configMap: 'registry-config',
  syncConfigMap: 'registry-sync',
  /** The sources' CAs and credentials (`<source>.ca.crt`, `<source>.username`, `<source>.password`), written by the hooks, read by the writer's sidecar. */
  sourcesSecret: 'registry-sources',
  /** The port nodes use (Service) and the container port Distribution listens on. */
  servicePort: 443,
  containerPort: 5000,
  /** The n-th address of the service CIDR is the registry's fixed ClusterIP; the next one the standby's. */
  serviceIpOffset: 20,
  standbyIpOffset: 21,
  defaultServiceDomain: 'cluster.local',
  serviceAccount: 'registry',
  podDisruptionBudget: 'registry',
  metricsPolicy: 'registry-metrics',
  labels: { 'app.kubernetes.io/name': 'registry', 'app.kubernetes.io/part-of': 'capi-registry-addon' },
} as const;

/** The registry's StatefulSet in the workload cluster. */
export const STATEFULSET_REF = { apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: REGISTRY.namespace, name: REGISTRY.name } as const;

/** The registry's label selector (its pods, its claims). */
export const REGISTRY_SELECTOR = Object.entries(REGISTRY.labels).map(([k, v]) => `${k}=${v}`).join(',');

/** Paths inside the registry pod. */
export const POD = {
  configDir: '/etc/distribution',
  configFile: '/etc/distribution/config.yml',
  /** Not inside configDir: a mount point inside a read-only ConfigMap volume fails on some runtimes. */
  tlsDir: '/etc/registry-tls',
  dataDir: '/var/lib/registry',
  syncConfigDir: '/etc/regbot/config',
  /** The sidecar's startup probe: `regbot once` with this file fails until the replica holds what the writer holds. */
  syncReadyFile: '/etc/regbot/config/ready.yml',
  syncCaFile: '/etc/regbot/ca/ca.crt',
  authDir: '/etc/registry-auth',
  htpasswdFile: '/etc/registry-auth/htpasswd',
  syncAuthDir: '/etc/regbot/auth',
  sourcesDir: '/etc/regbot/sources',
  /** When each source was last copied from (one file per source and setting): an emptyDir, so a new pod copies at once. */
  sourceStateDir: '/tmp',
  httpSecretKey: 'secret',
  debugPort: 5001,
  metricsPath: '/metrics',
} as const;

/** Where nodes keep the mirror configuration: our files in one directory, merged into certs.d by the script. */
export const NODE = {
  /** The hosts directory the script points the CRI at (unless the node already has one of its own). */
  hostsDir: '/etc/containerd/certs.d',
  addonDir: '/etc/containerd/capi-registry-addon',
  /** The mirror's host table; the script puts it first in every hosts.toml under the hosts directory. */
  hostsToml: '/etc/containerd/capi-registry-addon/hosts.toml',
  caFile: '/etc/containerd/capi-registry-addon/ca.crt',
  enableScript: '/etc/containerd/capi-registry-addon/enable-mirror.sh',
  /** key=value lines: state (enabled | not-enabled), reason, containerd version, config_path, ... */
  statusFile: '/etc/containerd/capi-registry-addon/status',
  containerdConfig: '/etc/containerd/config.toml',
} as const;

/** What a node's script reports on its Node once it has joined: the status file's state and reason. */
export const NODE_MIRROR_ANNOTATION = 'capi-registry-addon.io/mirror';
export const NODE_MIRROR_REASON_ANNOTATION = 'capi-registry-addon.io/mirror-reason';

/** Management-side Secret holding only the Cluster's issuer certificate (ca.crt), in the Cluster's namespace: what its nodes trust. */
export const clusterCaSecretName = (cluster: string) => `${cluster}-registry-addon-ca`;
/** Key in the CA copy, present while a trust rollover runs: when its ca.crt became a bundle (RFC 3339). Nodes read only ca.crt. */
export const ROLLOVER_SINCE_KEY = 'rollover-since';
/**
 * The Cluster's registry issuer (certificate and key), in the provider namespace beside the root. Named
 * by a digest of namespace/name: unique per Cluster, a valid name whatever their lengths.
 */
export const clusterIssuerSecretName = async (namespace: string, cluster: string) => `registry-addon-issuer-${(await sha256Hex(`${namespace}/${cluster}`)).slice(0, 20)}`;
/**
 * Provider-namespace Secret of a running trust rollover: the issuer the registry was served from when it
 * began (`ca.crt`) and when (`since`). Kept where no tenant writes, so nothing put into the CA copy is
 * ever trusted, and a start time from the future cannot keep the rollover open.
 */
export const rolloverRecordSecretName = async (namespace: string, cluster: string) => `registry-addon-rollover-${(await sha256Hex(`${namespace}/${cluster}`)).slice(0, 20)}`;
/** Label on issuer Secrets, so that `kubectl get secret -l` finds them all (backups, a manual move). */
export const ISSUER_LABEL = 'capi-registry-addon.io/cluster-issuer';
/** Management-side Secret with the node credential and the hosts.toml that carries it (nodes read it via contentFrom). */
export const nodeCredentialSecretName = (cluster: string) => `${cluster}-registry-addon-node`;
/** Management-side Secret with the node script (key NODE_SCRIPT_KEY), which nodes read via contentFrom. */
export const nodeScriptSecretName = (cluster: string) => `${cluster}-registry-addon-node-script`;
export const NODE_SCRIPT_KEY = 'enable-mirror.sh';
/** Management-side kubernetes.io/basic-auth Secret: the credential people and installers push with. */
export const pushCredentialSecretName = (cluster: string) => `${cluster}-registry-addon-push`;

export class RenderError extends Error {}

/** What kubeadm gives a cluster whose ClusterConfiguration names no serviceSubnet (and so CAPI with no services.cidrBlocks). */
export const KUBEADM_DEFAULT_SERVICE_CIDR = '10.96.0.0/12';

/**
 * Kubernetes' static band (KEP-3070, ServiceIPStaticSubrange): the first min(max(16, size/16), 256)
 * addresses after the network address are handed out only to Services that ask for them, so a fixed
 * ClusterIP there cannot be taken first by another Service. A range of 16 addresses or fewer has none.
 * (calculateRangeOffset in k8s.io/kubernetes pkg/registry/core/service/ipallocator.)
 */
export function staticBandSize(hostBits: number): number {
  if (hostBits <= 4) return 0;
  if (hostBits >= 12) return 256; // 4096 / 16
  return Math.max(16, 2 ** hostBits / 16);
}

/**
 * The registry's fixed ClusterIPs from the first service CIDR (first family if dual-stack; kubeadm's
 * default when a Cluster sets none, as its API server does): the writer's and the standby's. The 20th
 * and 21st addresses where they are inside the static band (a /23 or larger: every Cluster that had them
 * keeps them); else the band's last two (a /24 to a /27: .15 and .16, clear of .1 for `kubernetes`
 * and .10 for kube-dns). A range with no static band is refused, naming the fix.
 */
export function serviceIp(serviceCidrs: readonly string[], which: 'writer' | 'standby' = 'writer'): string {
  const cidr = serviceCidrs[0] ?? KUBEADM_DEFAULT_SERVICE_CIDR;
  const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  const base = match ? parseIp(match[1]!) : undefined;
  const prefix = match ? Number(match[2]) : NaN;
  if (!base || !(prefix <= base.length * 8)) throw new RenderError(`service CIDR ${JSON.stringify(cidr)} is not a valid CIDR (e.g. 10.96.0.0/12 or fd00:10:96::/112)`);
  const hostBits = base.length * 8 - prefix;
  const band = staticBandSize(hostBits);
  if (band === 0) throw new RenderError(`service CIDR ${cidr} is too small: Kubernetes reserves no addresses for fixed ClusterIPs in a range of 16 or fewer (KEP-3070), where the registry's two would be taken by other Services; use at least a /${base.length * 8 - 5}`);
  const [writer, standby] = band > REGISTRY.standbyIpOffset ? [REGISTRY.serviceIpOffset, REGISTRY.standbyIpOffset] : [band - 1, band];
  const offset = which === 'writer' ? writer : standby;
  const out = new Uint8Array(base);
  // Zero the host bits, then add the offset (fits in the last byte: offset <= 21).
  for (let bit = 0; bit < hostBits; bit++) out[out.length - 1 - (bit >> 3)]! &= ~(1 << (bit & 7));
  out[out.length - 1]! += offset;
  return formatIp(out);
}

/** host:port with IPv6 bracketed. */
export const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

export interface RegistryLayout {
  replicas: number;
  serviceDomain: string;
  /** The writer's Service IP: the push endpoint and every node's first mirror host. */
  serviceIp: string;
  /** The standby Service's IP (all ready replicas): every node's second mirror host when replicas > 1. */
  standbyIp: string;
}

/** A DNS name (RFC 1123 subdomain, as Kubernetes checks it): what may reach the sync sidecar's config, regbot's templates and the certificate's SANs. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

export function checkedServiceDomain(serviceDomain: string | undefined): string {
  if (!serviceDomain) return REGISTRY.defaultServiceDomain;
  if (!DNS_NAME.test(serviceDomain)) throw new RenderError(`clusterNetwork.serviceDomain ${JSON.stringify(serviceDomain.slice(0, 80))} is not a DNS name (lowercase letters, digits, '-' and '.', e.g. cluster.local)`);
  return serviceDomain;
}

export const registryLayout = (replicas: number, serviceDomain: string | undefined, serviceCidrs: readonly string[]): RegistryLayout => ({
  replicas,
  serviceDomain: checkedServiceDomain(serviceDomain),
  serviceIp: serviceIp(serviceCidrs, 'writer'),
  standbyIp: serviceIp(serviceCidrs, 'standby'),
});

export const podNames = (replicas: number) => Array.from({ length: replicas }, (_, i) => `${REGISTRY.name}-${i}`);

/** The writer's address as the other replicas reach it (its stable DNS name, container port). */
export const writerAddress = (domain: string) => hostPort(podHost(REGISTRY.writerPod, domain), REGISTRY.containerPort);

/** A replica's stable DNS name through the headless Service. */
export const podHost = (pod: string, domain: string) => `${pod}.${REGISTRY.headlessService}.${REGISTRY.namespace}.svc.${domain}`;

/** Every name and address the registry answers on: the server certificate's SANs. */
export function serverCertSans(layout: RegistryLayout): { commonName: string; dnsNames: string[]; ipAddresses: string[] } {
  const { name, namespace, headlessService, standbyService } = REGISTRY;
  const serviceForms = (svc: string) => [svc, `${svc}.${namespace}`, `${svc}.${namespace}.svc`, `${svc}.${namespace}.svc.${layout.serviceDomain}`];
  const podForms = podNames(layout.replicas).flatMap((pod) => [`${pod}.${headlessService}.${namespace}.svc`, podHost(pod, layout.serviceDomain)]);
  return {
    commonName: name,
    dnsNames: [...serviceForms(name), ...serviceForms(standbyService), ...serviceForms(headlessService), ...podForms, 'localhost'],
    ipAddresses: [layout.serviceIp, layout.standbyIp, '127.0.0.1'],
  };
}
