// The registry's workload-cluster objects: what the raw chart installs through CAAPH. Secrets are not
// here: the hooks write them straight to the workload cluster, so no key reaches Helm values.
import type { RegistryConfig } from './config.ts';
import { distributionConfig } from './distribution.ts';
import { POD, REGISTRY, type RegistryLayout } from './metadata.ts';
import { regsyncConfigs } from './regsync.ts';
import { sha256Hex } from './digest.ts';

type Obj = Record<string, unknown>;

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
  const registryConfig = distributionConfig({ auth });
  const syncConfigs = layout.replicas > 1 ? regsyncConfigs(layout, config) : {};
  const configSha = await sha256Hex(registryConfig + Object.entries(syncConfigs).map(([k, v]) => `${k}\n${v}`).join('\n'));
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
    ports: [{ name: 'https', containerPort: REGISTRY.containerPort, protocol: 'TCP' }],
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
  const regsyncContainer = {
    name: 'regsync',
    image: config.images.regsync,
    // Kubernetes expands $(POD_NAME) from the env below: each pod reads its own file.
    args: ['server', '-c', `${POD.regsyncConfigDir}/$(POD_NAME).yml`],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'HOME', value: '/tmp' },
    ],
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } },
    securityContext: hardened,
    volumeMounts: [
      { name: 'regsync-config', mountPath: POD.regsyncConfigDir, readOnly: true },
      // Only ca.crt: the sidecar verifies peers and needs no private key.
      { name: 'regsync-ca', mountPath: POD.regsyncCaFile.replace(/\/[^/]+$/, ''), readOnly: true },
      ...(auth ? [{ name: 'regsync-auth', mountPath: POD.regsyncAuthDir, readOnly: true }] : []),
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  const volumes: Obj[] = [
    { name: 'config', configMap: { name: REGISTRY.configMap } },
    { name: 'tls', secret: { secretName: REGISTRY.tlsSecret, items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] } },
    { name: 'tmp', emptyDir: {} },
    ...(auth ? [{ name: 'auth', secret: { secretName: REGISTRY.authSecret, items: [{ key: 'htpasswd', path: 'htpasswd' }] } }] : []),
    ...(layout.replicas > 1
      ? [
          { name: 'regsync-config', configMap: { name: REGISTRY.regsyncConfigMap } },
          { name: 'regsync-ca', secret: { secretName: REGISTRY.tlsSecret, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          ...(auth ? [{ name: 'regsync-auth', secret: { secretName: REGISTRY.regsyncAuthSecret } }] : []),
        ]
      : []),
  ];

  const objects: Obj[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: REGISTRY.namespace, labels: { ...REGISTRY.labels } } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(REGISTRY.serviceAccount), automountServiceAccountToken: false },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(REGISTRY.configMap), data: { 'config.yml': registryConfig } },
    ...(layout.replicas > 1 ? [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(REGISTRY.regsyncConfigMap), data: syncConfigs }] : []),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(REGISTRY.name),
      spec: {
        type: 'ClusterIP',
        clusterIP: layout.serviceIp,
        selector,
        ports: [{ name: 'https', port: REGISTRY.servicePort, targetPort: REGISTRY.containerPort, protocol: 'TCP' }],
        // One push is many requests; with per-replica storage they must all reach the same pod.
        sessionAffinity: 'ClientIP',
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(REGISTRY.headlessService),
      spec: {
        clusterIP: 'None',
        selector,
        ports: [{ name: 'https', port: REGISTRY.containerPort, targetPort: REGISTRY.containerPort, protocol: 'TCP' }],
        // Peers sync from a replica before it is Ready (a new replica starts empty).
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
              'capi-registry-addon/tls-sha256': input.tlsCertSha256,
              ...(auth ? { 'capi-registry-addon/auth-sha256': input.authSha256 ?? '0'.repeat(64) } : {}),
            },
          },
          spec: {
            serviceAccountName: REGISTRY.serviceAccount,
            automountServiceAccountToken: false,
            // A Service named like a registry setting would inject REGISTRY_* variables that Distribution reads.
            enableServiceLinks: false,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            ...placement(config),
            containers: layout.replicas > 1 ? [registryContainer, regsyncContainer] : [registryContainer],
            volumes,
          },
        },
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
  ];
  return objects;
}
