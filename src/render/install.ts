// `manifests`: everything a platform team applies once to install the extension in the management
// cluster. RBAC lists exactly what the code does with the management API today (see README).
import { ROOT_CA_SECRET } from '../pki/root-ca.ts';
import { HOOKS } from '../runtime-sdk/catalog.ts';
import { dumpYaml } from './distribution.ts';

export interface InstallOptions {
  namespace: string;
  image: string;
  capiMinor: number;
  /** Namespaces whose pods may reach the hook and chart port (CAPI's controllers, CAAPH, a scraper). */
  allowFrom?: string[];
  /** More `serve` flags for the Deployment (the clusterctl variables: images, chart location). */
  serveArgs?: string[];
  /** The ClusterRole and its binding; clusterctl deletes cluster-scoped objects only when named `<namespace>-…`. */
  clusterRoleName?: string;
}

/** Where `clusterctl init` puts CAPI's core controllers and CAAPH (`--addon helm`). */
export const DEFAULT_ALLOW_FROM = ['capi-system', 'caaph-system'];

export const EXTENSION = { name: 'capi-registry-addon', servingSecret: 'capi-registry-addon-serving-cert', port: 9443 } as const;

/**
 * The RBAC rules, each with the reason the docs print and where it is granted: `cluster` in the
 * ClusterRole (objects live in every Cluster's namespace), `provider namespace` in a Role there only.
 */
export const RBAC_RULES = [
  {
    rule: { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
    why: 'read the root CA and CAPI\'s <cluster>-kubeconfig; create the root CA when minting and each Cluster\'s issuer; apply <cluster>-registry-addon-ca, the node script and the credentials; delete them at BeforeClusterDelete. List and watch keep the background loop\'s caches: only our labelled Secrets, the root CA by name and CAPI\'s kubeconfig Secrets (by its label and type) are selected',
    scope: 'cluster',
  },
  {
    rule: { apiGroups: ['addons.cluster.x-k8s.io'], resources: ['helmchartproxies'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
    why: 'apply the one HelmChartProxy per Cluster (server-side apply creates it), delete it at BeforeClusterDelete; list and watch ours (by label), so one deleted or changed is put back at once',
    scope: 'cluster',
  },
  {
    rule: { apiGroups: ['addons.cluster.x-k8s.io'], resources: ['helmreleaseproxies'], verbs: ['list', 'watch'] },
    why: 'read what CAAPH reports of the Cluster\'s release: a failed install or upgrade is reported on the Cluster, not hidden behind "applied"',
    scope: 'cluster',
  },
  {
    rule: { apiGroups: ['cluster.x-k8s.io'], resources: ['clusters'], verbs: ['get', 'list', 'watch', 'patch'] },
    why: 'day 2: watch the Clusters, so one that opts in after creation (or changes) is acted on at once; label an opted-in Cluster so that its HelmChartProxy selects it and annotate it with its certificate expiry; list the labelled Clusters for the expiry metric',
    scope: 'cluster',
  },
  {
    rule: { apiGroups: ['cluster.x-k8s.io'], resources: ['machines'], verbs: ['list'] },
    why: 'during a trust rollover (after clusterctl move): list a Cluster\'s Machines to know when every node has booted trusting the new issuer',
    scope: 'cluster',
  },
  {
    rule: { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'list', 'patch', 'delete'] },
    why: 'each replica holds a Lease of its own in the provider namespace (server-side apply creates it) and lists the others\' to share the background loop\'s Clusters; it deletes its own on shutdown. Granted in that namespace only (a Role): Leases elsewhere are other controllers\' leader elections',
    scope: 'provider namespace',
  },
  {
    rule: { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    why: 'record an Event on the Cluster for every Failure a hook returns',
    scope: 'cluster',
  },
] as const;

const rulesOf = (scope: (typeof RBAC_RULES)[number]['scope']) => RBAC_RULES.filter((r) => r.scope === scope).map((r) => r.rule);

/** The Role in the provider namespace (Leases), named like the ServiceAccount it is bound to. */
export function providerNamespaceRole(namespace: string) {
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: EXTENSION.name, namespace, labels: { 'app.kubernetes.io/name': EXTENSION.name } }, rules: rulesOf('provider namespace') };
}

export function installManifests(o: InstallOptions): Record<string, unknown>[] {
  const labels = { 'app.kubernetes.io/name': EXTENSION.name };
  const meta = (name: string) => ({ name, namespace: o.namespace, labels });
  const selfSigned = { name: `${EXTENSION.name}-selfsigned`, kind: 'Issuer' };
  // The root CA also signs the extension's serving certificate: CAPI (ExtensionConfig) and CAAPH (the
  // chart's OCI endpoint) then trust one CA, the one each Cluster's <cluster>-registry-addon-ca holds.
  const rootIssuer = { name: `${EXTENSION.name}-root-ca`, kind: 'Issuer' };
  const clusterRole = o.clusterRoleName ?? EXTENSION.name;
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: o.namespace, labels } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(EXTENSION.name) },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRole, labels }, rules: rulesOf('cluster') },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: clusterRole, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: EXTENSION.name, namespace: o.namespace }],
    },
    providerNamespaceRole(o.namespace),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(EXTENSION.name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: EXTENSION.name },
      subjects: [{ kind: 'ServiceAccount', name: EXTENSION.name, namespace: o.namespace }],
    },
    { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: meta(selfSigned.name), spec: { selfSigned: {} } },
    {
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: meta('registry-addon-root-ca'),
      spec: {
        isCA: true, commonName: 'capi-registry-addon root CA', subject: { organizations: ['capi-registry-addon'] }, secretName: ROOT_CA_SECRET,
        duration: '87600h', privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Never' }, issuerRef: selfSigned,
      },
    },
    { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: meta(rootIssuer.name), spec: { ca: { secretName: ROOT_CA_SECRET } } },
    {
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: meta(EXTENSION.servingSecret),
      spec: {
        secretName: EXTENSION.servingSecret, duration: '8760h', renewBefore: '720h', privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        dnsNames: [`${EXTENSION.name}.${o.namespace}.svc`, `${EXTENSION.name}.${o.namespace}.svc.cluster.local`], issuerRef: rootIssuer,
      },
    },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(EXTENSION.name),
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: EXTENSION.name,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: labels } }],
            containers: [{
              // clusterctl's provider contract names the container that runs the extension `manager`.
              name: 'manager',
              image: o.image,
              args: ['serve', `--listen=0.0.0.0:${EXTENSION.port}`, `--capi-version=v1.${o.capiMinor}`, `--provider-namespace=${o.namespace}`, ...(o.serveArgs ?? [])],
              // Names this replica's member Lease (the background loop's Clusters are shared among replicas).
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: [{ name: 'https', containerPort: EXTENSION.port }],
              readinessProbe: { httpGet: { path: '/readyz', port: EXTENSION.port, scheme: 'HTTPS' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: EXTENSION.port, scheme: 'HTTPS' }, periodSeconds: 20 },
              // bench:fleet (Node with the image's flags, two replicas): RSS 119-135 MiB at 100 opted-in Clusters,
              // 159-165 at 1,000, at most 199 while converging them after a restart; the limit leaves twice that
              // for floods of hook bodies (the body budget bounds those).
              resources: { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '384Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'serving-cert', mountPath: '/tmp/k8s-webhook-server/serving-certs', readOnly: true }],
            }],
            volumes: [{ name: 'serving-cert', secret: { secretName: EXTENSION.servingSecret } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(EXTENSION.name),
      spec: { selector: labels, ports: [{ name: 'https', port: 443, targetPort: EXTENSION.port }] },
    },
    { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(EXTENSION.name), spec: { minAvailable: 1, selector: { matchLabels: labels } } },
    {
      // The hook port acts on any Cluster a body names (after checking it with the API server): only the
      // callers that need it may reach it. CNI without NetworkPolicy support ignores this object.
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta(EXTENSION.name),
      spec: {
        podSelector: { matchLabels: labels },
        policyTypes: ['Ingress'],
        ingress: [{
          from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: o.allowFrom ?? DEFAULT_ALLOW_FROM }] } }],
          ports: [{ protocol: 'TCP', port: EXTENSION.port }],
        }],
      },
    },
    {
      // CAPI serves ExtensionConfig as v1alpha1 up to v1.10 and v1beta2 from v1.11 (same fields used here).
      apiVersion: o.capiMinor <= 10 ? 'runtime.cluster.x-k8s.io/v1alpha1' : 'runtime.cluster.x-k8s.io/v1beta2',
      kind: 'ExtensionConfig',
      metadata: { name: EXTENSION.name, labels, annotations: { 'runtime.cluster.x-k8s.io/inject-ca-from-secret': `${o.namespace}/${EXTENSION.servingSecret}` } },
      spec: { clientConfig: { service: { name: EXTENSION.name, namespace: o.namespace, port: 443 } }, namespaceSelector: {} },
    },
  ];
}

/** The example ClusterClass patch block, as YAML comment lines (it belongs in the user's ClusterClass). */
export function clusterClassExample(capiMinor: number): string {
  const handler = (hook: string) => `${HOOKS.find((h) => h.hook === hook)!.handler}.${EXTENSION.name}`;
  const fields = capiMinor <= 10
    ? { generateExtension: handler('GeneratePatches'), discoverVariablesExtension: handler('DiscoverVariables') }
    : { generatePatchesExtension: handler('GeneratePatches'), discoverVariablesExtension: handler('DiscoverVariables') };
  return dumpYaml({ spec: { patches: [{ name: 'registry-addon', external: fields }] } }).split('\n').filter(Boolean).map((l) => `# ${l}`).join('\n');
}

export function installYaml(o: InstallOptions): string {
  const docs = installManifests(o).map((m) => `---\n${dumpYaml(m)}`).join('');
  return `${docs}---\n# Reference the handlers from your ClusterClass:\n${clusterClassExample(o.capiMinor)}\n`;
}
