// The registry's workload-cluster objects: what the raw chart installs through CAAPH. Secrets are not
// here: the hooks write them straight to the workload cluster, so no key reaches Helm values.
import { restrictedRepositoryPolicy } from './admission.ts';
import type { RegistryConfig } from './config.ts';
import { distributionConfig } from './distribution.ts';
import { POD, REGISTRY, type RegistryLayout } from './metadata.ts';
import { runsSidecar, syncConfigs } from './sync.ts';
import { sha256Hex } from './digest.ts';

type Obj = Record<string, unknown>;

/** Pod annotation: when garbage collection was last due. A new value restarts the pods one at a time, and each collects before it serves. */
export const GC_AT_POD_ANNOTATION = 'capi-registry-addon/gc-at';
/** Pod-template annotation: the served certificate's SHA-256 (a renewal rolls the pods; a rollover reads which one they serve). */
export const TLS_SHA_POD_ANNOTATION = 'capi-registry-addon/tls-sha256';

/** The garbage-collection init container's script: `registry garbage-collect "$@"` once something was stored. */
export const GC_SCRIPT = `if [ -d ${POD.dataDir}/docker/registry/v2/repositories ]; then exec registry garbage-collect "$@"; fi; echo "garbage-collect: nothing stored yet, nothing to collect"`;

const meta = (name: string, extra: Obj = {}) => ({ name, namespace: REGISTRY.namespace, labels: { ...REGISTRY.labels }, ...extra });

const hardened = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export interface WorkloadInput {
  layout: RegistryLayout;
  config: RegistryConfig;
  /** SHA-256 of the served tls.crt: a renewed certificate changes the pod template and rolls the pods. */
  tlsCertSha256: string;
  /** SHA-256 of the htpasswd file (auth on): rotated credentials roll the pods the same way. */
  authSha256?: string;
  /** When garbage collection was last due (RFC 3339): a new value rolls the pods, and each collects before it serves. */
  gcAt?: string;
  /** SHA-256 of the sources Secret (the sources' CAs and credentials): a changed one rolls the pods, and the writer copies at once. */
  sourcesSha256?: string;
}

const placement = (config: RegistryConfig): Obj => {
  const antiAffinity = {
    podAntiAffinity: {
      // Preferred, not required: a one-node control plane must still run every replica.
      preferredDuringSchedulingIgnoredDuringExecution: [{
        weight: 100,
        podAffinityTerm: { labelSelector: { matchLabels: { ...REGISTRY.labels } }, topologyKey: 'kubernetes.io/hostname' },
      }],
    },
  };
  if (config.placement !== 'ControlPlane') return { affinity: antiAffinity };
  return {
    affinity: {
      ...antiAffinity,
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] }],
        },
      },
    },
    tolerations: [
      { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' },
    ],
  };
};

export async function workloadManifests(input: WorkloadInput): Promise<Obj[]> {
  const { layout, config } = input;
  const auth = config.auth.enabled;
  const metrics = config.metrics.enabled;
  const registryConfig = distributionConfig({ auth, metrics });
  const sidecar = runsSidecar(layout, config);
  const sources = (config.sources?.length ?? 0) > 0;
  const sync = sidecar ? syncConfigs(layout, config) : {};
  const configSha = await sha256Hex(registryConfig + Object.entries(sync).map(([k, v]) => `${k}\n${v}`).join('\n'));
  const selector = { ...REGISTRY.labels };
  const probe = (path: string, period: number) => ({
    httpGet: { path, port: REGISTRY.containerPort, scheme: 'HTTPS' },
    periodSeconds: period,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  const registryContainer = {
    name: 'registry',
    image: config.images.registry,
    args: ['serve', POD.configFile],
    ports: [
      { name: 'https', containerPort: REGISTRY.containerPort, protocol: 'TCP' },
      ...(metrics ? [{ name: 'metrics', containerPort: POD.debugPort, protocol: 'TCP' }] : []),
    ],
    env: [
      { name: 'REGISTRY_HTTP_SECRET', valueFrom: { secretKeyRef: { name: REGISTRY.httpSecret, key: POD.httpSecretKey } } },
      { name: 'OTEL_TRACES_EXPORTER', value: 'none' },
    ],
    // `/` answers 200 without credentials (503 when the storage health check fails); `/v2/` is 401 with auth on.
    readinessProbe: probe('/', 5),
    livenessProbe: { ...probe('/', 20), initialDelaySeconds: 10 },
    resources: config.resources,
    securityContext: hardened,
    volumeMounts: [
      { name: 'config', mountPath: POD.configDir, readOnly: true },
      { name: 'tls', mountPath: POD.tlsDir, readOnly: true },
      ...(auth ? [{ name: 'auth', mountPath: POD.authDir, readOnly: true }] : []),
      { name: 'data', mountPath: POD.dataDir },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  const syncContainer = {
    name: 'sync',
    image: config.images.regbot,
    // By PATH, not by path: the scratch image has /regbot, the -alpine one /usr/local/bin/regbot.
    command: ['regbot'],
    // Kubernetes expands $(POD_NAME) from the env below: each pod reads its own file (the writer's runs no script).
    args: ['server', '-c', `${POD.syncConfigDir}/$(POD_NAME).yml`],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'HOME', value: '/tmp' },
      { name: 'PATH', value: '/usr/local/bin:/' },
    ],
    // The pod is Ready only once this replica holds every tag of the writer at the writer's digest: an
    // empty new replica never answers for the standby Service. Each check reads every tag on both sides (two
    // HEADs a tag; 5 minutes allowed); one hour of failures restarts only this sidecar.
    startupProbe: { exec: { command: ['regbot', 'once', '-c', POD.syncReadyFile] }, periodSeconds: 30, timeoutSeconds: 300, failureThreshold: 120 },
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } },
    securityContext: hardened,
    volumeMounts: [
      { name: 'sync-config', mountPath: POD.syncConfigDir, readOnly: true },
      // Only ca.crt: the sidecar verifies the writer and needs no private key.
      { name: 'sync-ca', mountPath: POD.syncCaFile.replace(/\/[^/]+$/, ''), readOnly: true },
      ...(auth ? [{ name: 'sync-auth', mountPath: POD.syncAuthDir, readOnly: true }] : []),
      ...(sources ? [{ name: 'sync-sources', mountPath: POD.sourcesDir, readOnly: true }] : []),
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  // Before the registry starts, nothing writes to the volume (the writer is down: pushes fail and nodes
  // pull from a standby; a standby's sidecar has not started): Distribution's garbage collection is safe.
  const gcContainer = {
    name: 'garbage-collect',
    image: config.images.registry,
    // Through the image's shell: `registry garbage-collect` exits 1 on a volume nothing was ever pushed
    // to ("Path not found: /docker/registry/v2/repositories"), and a new replica would never start (first
    // seen when a real kubelet ran the chart). With no repository there is no garbage either.
    command: ['/bin/sh', '-c', GC_SCRIPT, 'garbage-collect', ...(config.garbageCollection.deleteUntagged ? ['--delete-untagged'] : []), POD.configFile],
    env: [{ name: 'OTEL_TRACES_EXPORTER', value: 'none' }],
    resources: config.resources,
    securityContext: hardened,
    volumeMounts: [{ name: 'config', mountPath: POD.configDir, readOnly: true }, { name: 'data', mountPath: POD.dataDir }, { name: 'tmp', mountPath: '/tmp' }],
  };
  const volumes: Obj[] = [
    { name: 'config', configMap: { name: REGISTRY.configMap } },
    { name: 'tls', secret: { secretName: REGISTRY.tlsSecret, items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] } },
    { name: 'tmp', emptyDir: {} },
    ...(auth ? [{ name: 'auth', secret: { secretName: REGISTRY.authSecret, items: [{ key: 'htpasswd', path: 'htpasswd' }] } }] : []),
    ...(sidecar
      ? [
          { name: 'sync-config', configMap: { name: REGISTRY.syncConfigMap } },
          { name: 'sync-ca', secret: { secretName: REGISTRY.tlsSecret, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          ...(auth ? [{ name: 'sync-auth', secret: { secretName: REGISTRY.syncAuthSecret } }] : []),
          ...(sources ? [{ name: 'sync-sources', secret: { secretName: REGISTRY.sourcesSecret } }] : []),
        ]
      : []),
  ];

  const objects: Obj[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: REGISTRY.namespace, labels: { ...REGISTRY.labels } } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(REGISTRY.serviceAccount), automountServiceAccountToken: false },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(REGISTRY.configMap), data: { 'config.yml': registryConfig } },
    ...(sidecar ? [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(REGISTRY.syncConfigMap), data: sync }] : []),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(REGISTRY.name),
      spec: {
        type: 'ClusterIP',
        clusterIP: layout.serviceIp,
        // The writer only: every push lands there and every node reads there first, so a push is
        // pullable everywhere as soon as it returns and a tag has one state.
        selector: { ...selector, 'statefulset.kubernetes.io/pod-name': REGISTRY.writerPod },
        ports: [{ name: 'https', port: REGISTRY.servicePort, targetPort: REGISTRY.containerPort, protocol: 'TCP' }],
      },
    },
    ...(layout.replicas > 1
      ? [{
          apiVersion: 'v1',
          kind: 'Service',
          metadata: meta(REGISTRY.standbyService),
          spec: {
            type: 'ClusterIP',
            clusterIP: layout.standbyIp,
            // Every Ready replica (Ready = in sync with the writer): nodes' second host, reached when the writer is down.
            selector,
            ports: [{ name: 'https', port: REGISTRY.servicePort, targetPort: REGISTRY.containerPort, protocol: 'TCP' }],
            // A pull is many requests: keep a node on one replica.
            sessionAffinity: 'ClientIP',
          },
        }]
      : []),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(REGISTRY.headlessService),
      spec: {
        clusterIP: 'None',
        selector,
        ports: [{ name: 'https', port: REGISTRY.containerPort, targetPort: REGISTRY.containerPort, protocol: 'TCP' }],
        // Replicas reach the writer by name before it is Ready.
        publishNotReadyAddresses: true,
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta(REGISTRY.name),
      spec: {
        serviceName: REGISTRY.headlessService,
        replicas: layout.replicas,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: { ...REGISTRY.labels },
            annotations: {
              'capi-registry-addon/config-sha256': configSha,
              [TLS_SHA_POD_ANNOTATION]: input.tlsCertSha256,
              ...(auth ? { 'capi-registry-addon/auth-sha256': input.authSha256 ?? '0'.repeat(64) } : {}),
              ...(sources ? { 'capi-registry-addon/sources-sha256': input.sourcesSha256 ?? '0'.repeat(64) } : {}),
              ...(input.gcAt ? { [GC_AT_POD_ANNOTATION]: input.gcAt } : {}),
              // The de facto scrape annotations (Prometheus' kubernetes_sd examples, many Helm charts' defaults).
              ...(metrics ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(POD.debugPort), 'prometheus.io/path': POD.metricsPath } : {}),
            },
          },
          spec: {
            serviceAccountName: REGISTRY.serviceAccount,
            automountServiceAccountToken: false,
            // A Service named like a registry setting would inject REGISTRY_* variables that Distribution reads.
            enableServiceLinks: false,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            ...placement(config),
            initContainers: [gcContainer],
            containers: sidecar ? [registryContainer, syncContainer] : [registryContainer],
            volumes,
          },
        },
        // The claims go with the StatefulSet (a deleted release frees its disks); a scale-down keeps them.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels: { ...REGISTRY.labels } },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(config.storage.storageClassName ? { storageClassName: config.storage.storageClassName } : {}),
            resources: { requests: { storage: config.storage.size } },
          },
        }],
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(REGISTRY.podDisruptionBudget),
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    },
    ...(metrics ? [metricsPolicy(selector, config.metrics.allowFrom)] : []),
    ...restrictedRepositoryPolicy(config.restrictedRepositories),
  ];
  return objects;
}

/**
 * The metrics listener also serves Go's pprof and expvar: only the allowFrom namespaces reach it. The
 * registry port stays open to every source (nodes pull from the host network, replicas sync from each
 * other), since a pod selected by any ingress policy refuses whatever no rule allows.
 */
function metricsPolicy(selector: Record<string, string>, allowFrom: string[]): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(REGISTRY.metricsPolicy),
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'TCP', port: REGISTRY.containerPort }] },
        ...(allowFrom.length ? [{
          from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: allowFrom } ] } }],
          ports: [{ protocol: 'TCP', port: POD.debugPort }],
        }] : []),
      ],
    },
  };
}
