// What Cluster API's controllers would have done, against the real management API server: create a
// Cluster (v1beta2, storage version), mark its control plane initialized, write the kubeconfig Secret,
// and the hook requests CAPI would send for it (the Cluster as the API server returns it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installManifests, providerNamespaceRole } from '../../../src/render/install.ts';
import { FIXTURES, HOOK_PREFIX } from '../../helpers.ts';
import type { KubeApi } from './kube.ts';
import { makeLeaf } from './pki.ts';
import { workDir } from './base.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
export const ok = <R extends { status: number; text: string }>(r: R, what: string): R => {
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
  return r;
};

export async function ensureNamespace(api: KubeApi, name: string) {
  const r = await api.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  if (r.status !== 201 && r.status !== 409) throw new Error(`namespace ${name}: ${r.status} ${r.text}`);
}

export async function createCluster(api: KubeApi, ns: string, name: string, opts: { services: string[]; registry?: unknown }) {
  await ensureNamespace(api, ns);
  // The CRD wants at least one variable: a Cluster that has not opted in carries clusterConfig without the registry.
  const variables = [{ name: 'clusterConfig', value: opts.registry === undefined ? { addons: {} } : { addons: { registry: opts.registry } } }];
  const r = ok(await api.request('POST', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters`, {
    apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Cluster', metadata: { name, namespace: ns },
    spec: { clusterNetwork: { services: { cidrBlocks: opts.services } }, topology: { classRef: { name: 'quick-start' }, version: 'v1.33.1', variables } },
  }), `Cluster ${ns}/${name}`);
  return r.body;
}

/** Starts deleting the Cluster as `kubectl delete` would while CAPI's finalizer holds it: it gets a deletionTimestamp and stays readable. */
export async function startDeleting(api: KubeApi, ns: string, name: string) {
  const path = `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}`;
  ok(await api.request('PATCH', path, JSON.stringify({ metadata: { finalizers: ['cluster.cluster.x-k8s.io'] } }), 'application/merge-patch+json'), 'finalizer');
  ok(await api.request('DELETE', path), `delete Cluster ${ns}/${name}`);
  return getCluster(api, ns, name);
}

export const getCluster = async (api: KubeApi, ns: string, name: string) => (await api.request('GET', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}`)).body;

/** The status CAPI writes once the first control plane machine is up. */
export async function markControlPlaneInitialized(api: KubeApi, ns: string, name: string) {
  ok(await api.request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}/status`, JSON.stringify({
    status: { initialization: { infrastructureProvisioned: true, controlPlaneInitialized: true },
      // The machine counts CAPI's Cluster controller keeps (one control plane machine, no workers yet).
      controlPlane: { desiredReplicas: 1, replicas: 1, readyReplicas: 1, availableReplicas: 1, upToDateReplicas: 1 },
      workers: { desiredReplicas: 0, replicas: 0, readyReplicas: 0, availableReplicas: 0, upToDateReplicas: 0 },
      conditions: [{ type: 'ControlPlaneInitialized', status: 'True', reason: 'Initialized', message: '', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] },
  }), 'application/merge-patch+json'), 'Cluster status');
}

/** `<cluster>-kubeconfig` (key value), as CAPI writes it, pointing at `workload`. */
export async function putKubeconfig(api: KubeApi, ns: string, name: string, kubeconfig: string) {
  const path = `/api/v1/namespaces/${ns}/secrets`;
  await api.request('DELETE', `${path}/${name}-kubeconfig`);
  ok(await api.request('POST', path, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-kubeconfig`, labels: { 'cluster.x-k8s.io/cluster-name': name } },
    type: 'cluster.x-k8s.io/secret', data: { value: b64(kubeconfig) } }), 'kubeconfig Secret');
}

/** A lifecycle hook request carrying the Cluster exactly as the API server returns it. */
export function lifecycleRequest(hook: string, cluster: unknown, extra: Record<string, unknown> = {}) {
  if (hook === 'BeforeClusterUpgrade') extra = { fromKubernetesVersion: 'v1.33.1', toKubernetesVersion: 'v1.34.0', ...extra };
  return JSON.stringify({ apiVersion: 'hooks.runtime.cluster.x-k8s.io/v1alpha1', kind: `${hook}Request`, settings: { extensionConfigName: 'capi-registry-addon' }, cluster, ...extra });
}

/** CAPI v1.13's GeneratePatches request (recorded fixture) re-aimed at one Cluster. */
export function generatePatchesRequest(ns: string, name: string, opts: { services: string[]; registry?: unknown }) {
  const req = JSON.parse(readFileSync(join(FIXTURES, 'capi', 'v1.13', 'generate-patches.opted-in.json'), 'utf8'));
  req.variables = req.variables.filter((v: { name: string }) => v.name !== 'clusterConfig' || opts.registry !== undefined);
  for (const v of req.variables) {
    if (v.name === 'clusterConfig') v.value = { addons: { registry: opts.registry } };
    if (v.name === 'builtin') Object.assign(v.value.cluster, { name, namespace: ns, network: { ...v.value.cluster.network, services: opts.services } });
  }
  return JSON.stringify(req);
}

export const HOOK_PATHS = {
  BeforeClusterCreate: `${HOOK_PREFIX}/beforeclustercreate/before-cluster-create`,
  AfterControlPlaneInitialized: `${HOOK_PREFIX}/aftercontrolplaneinitialized/after-control-plane-initialized`,
  BeforeClusterUpgrade: `${HOOK_PREFIX}/beforeclusterupgrade/before-cluster-upgrade`,
  BeforeClusterDelete: `${HOOK_PREFIX}/beforeclusterdelete/before-cluster-delete`,
  GeneratePatches: `${HOOK_PREFIX}/generatepatches/generate-patches`,
} as const;

/**
 * A kubeconfig for user `user` (client certificate) bound to exactly the ClusterRole our install
 * manifests ship (or to `rules` instead), and to their Role in each of `providerNamespaces` (Leases):
 * the extension then runs with the RBAC a real install gives it.
 */
export async function extensionKubeconfig(api: KubeApi, user: string, opts: { rules?: unknown[]; providerNamespaces?: string[] } = {}): Promise<string> {
  const role = installManifests({ namespace: 'unused', image: 'unused', capiMinor: 12 }).find((m) => m.kind === 'ClusterRole') as { rules: unknown[] };
  ok(await api.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: user }, rules: opts.rules ?? role.rules }), 'ClusterRole');
  ok(await api.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: user },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: user }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  }), 'ClusterRoleBinding');
  for (const ns of opts.providerNamespaces ?? []) await bindProviderNamespace(api, user, ns);
  const leaf = makeLeaf(api.ca, user, { client: true, subject: `/CN=${user}` });
  const file = join(workDir('kubeconfigs'), `${user}.json`);
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c', clusters: [{ name: 'c', cluster: { server: api.url, 'certificate-authority-data': b64(api.ca.pem) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(leaf.cert), 'client-key-data': b64(leaf.key) } }], contexts: [{ name: 'c', context: { cluster: 'c', user } }],
  }));
  return file;
}

/** The install's Role (Leases) in provider namespace `namespace`, bound to `user`; creates the namespace. */
export async function bindProviderNamespace(api: KubeApi, user: string, namespace: string): Promise<void> {
  await ensureNamespace(api, namespace);
  const role = providerNamespaceRole(namespace);
  const name = `${role.metadata.name}-${user}`;
  ok(await api.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, { ...role, metadata: { ...role.metadata, name } }), 'Role');
  ok(await api.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  }), 'RoleBinding');
}

const RETRYING_TAIL = "; capi-registry-addon retries in the background: see the Cluster's annotation capi-registry-addon.io/registry-status and its Events";

/**
 * ACPI and BCU never block on the registry: a failed attempt answers Success that quotes the reason,
 * and the Cluster carries it as `Retrying: <reason>`. Returns the reason.
 */
export async function expectRetrying(api: KubeApi, reply: { status: string; message?: string }, ns: string, name: string): Promise<string> {
  if (reply.status !== 'Success') throw new Error(`expected Success (the registry retries in the background), got ${JSON.stringify(reply)}`);
  const m = /^registry not deployed yet \((.*)\)(; .*)$/s.exec(reply.message ?? '');
  if (!m || m[2] !== RETRYING_TAIL) throw new Error(`not a retrying answer: ${reply.message}`);
  const status = (await getCluster(api, ns, name)).metadata.annotations?.['capi-registry-addon.io/registry-status'];
  if (status !== `Retrying: ${m[1]}`) throw new Error(`Cluster ${ns}/${name} registry-status ${JSON.stringify(status)}, expected "Retrying: ${m[1]}"`);
  return m[1]!;
}
