// GeneratePatches, pure: for every kubeadm bootstrap template of an opted-in Cluster, a JSON Patch
// that adds the node files and the pre- and post-kubeadm commands. Idempotent per call (CAPI rebuilds the request
// from the ClusterClass each time, but a template may already carry one of our paths): a path that is
// present is replaced, never duplicated; missing parents (`files`, even `kubeadmConfigSpec`) are created
// whole, since CAPI's JSON Patch `add` does not create parents.
import { readRegistryConfig } from '../render/config.ts';
import { registryLayout, RenderError } from '../render/metadata.ts';
import { nodeFiles, type NodeFiles } from '../render/node-files.ts';
import type { GeneratePatchesItem, PatchResult, Variable } from '../runtime-sdk/types.ts';
import { registryOptIn, registryState } from './opt-in.ts';
import { base64FromText } from '../lib/bytes.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where a template keeps its KubeadmConfigSpec, by holder (kind + fieldPath; any API version). */
export function kubeadmSpecPath(item: GeneratePatchesItem): string[] | undefined {
  const { holderReference: holder, object } = item;
  const group = String(object.apiVersion ?? '').split('/')[0];
  if (holder.kind === 'Cluster' && holder.fieldPath === 'spec.controlPlaneRef' && object.kind === 'KubeadmControlPlaneTemplate' && group === 'controlplane.cluster.x-k8s.io') {
    return ['spec', 'template', 'spec', 'kubeadmConfigSpec'];
  }
  if ((holder.kind === 'MachineDeployment' || holder.kind === 'MachinePool') && holder.fieldPath === 'spec.template.spec.bootstrap.configRef'
    && object.kind === 'KubeadmConfigTemplate' && group === 'bootstrap.cluster.x-k8s.io') {
    return ['spec', 'template', 'spec'];
  }
  return undefined;
}

/** CAPI's variable precedence: item variables over global ones, `builtin` merged key by key. */
export function mergeVariables(global: readonly Variable[], item: readonly Variable[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const v of [...global, ...item]) {
    const prev = out.get(v.name);
    out.set(v.name, v.name === 'builtin' && isObject(prev) && isObject(v.value) ? { ...prev, ...v.value } : v.value);
  }
  return out;
}

const optInOf = (variables: Map<string, unknown>) => registryOptIn([...variables].map(([name, value]) => ({ name, value })));

/** JSON with object keys sorted: the API server hands templates back with its own key order. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_, x) => (isObject(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));

export type JsonPatchOp = { op: 'add' | 'replace'; path: string; value: unknown };

const pointer = (segments: (string | number)[]) => `/${segments.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

/** JSON Patch operations that put `node` into the KubeadmConfigSpec at `specPath` of `object`. */
export function kubeadmPatch(object: Json, specPath: string[], node: NodeFiles): JsonPatchOp[] {
  let container: unknown = object;
  for (let i = 0; i < specPath.length; i++) {
    const next = isObject(container) ? container[specPath[i]!] : undefined;
    if (!isObject(next)) {
      // Create the first missing level with everything below it.
      const value = specPath.slice(i + 1).reduceRight<Json>((inner, key) => ({ [key]: inner }), { files: node.files, preKubeadmCommands: node.preKubeadmCommands, postKubeadmCommands: node.postKubeadmCommands });
      return [{ op: 'add', path: pointer(specPath.slice(0, i + 1)), value }];
    }
    container = next;
  }
  const spec = container as Json;
  const ops: JsonPatchOp[] = [];
  const files = spec.files;
  if (!Array.isArray(files)) {
    ops.push({ op: 'add', path: pointer([...specPath, 'files']), value: node.files });
  } else {
    for (const file of node.files) {
      const at = files.findIndex((f) => isObject(f) && f.path === file.path);
      if (at < 0) ops.push({ op: 'add', path: pointer([...specPath, 'files', '-']), value: file });
      else if (canonical(files[at]) !== canonical(file)) ops.push({ op: 'replace', path: pointer([...specPath, 'files', at]), value: file });
    }
  }
  // Ours run first among preKubeadmCommands (a ClusterClass's own command that pulls an image must find
  // the mirror in place, and containerd must not restart under what it started) and last among
  // postKubeadmCommands (the report reads what the boot ended with).
  for (const list of ['preKubeadmCommands', 'postKubeadmCommands'] as const) {
    const commands = spec[list];
    if (!Array.isArray(commands)) {
      ops.push({ op: 'add', path: pointer([...specPath, list]), value: node[list] });
      continue;
    }
    const theirs = commands.filter((c) => !node[list].includes(c as string));
    const wanted = list === 'preKubeadmCommands' ? [...node[list], ...theirs] : [...theirs, ...node[list]];
    if (canonical(commands) !== canonical(wanted)) ops.push({ op: 'replace', path: pointer([...specPath, list]), value: wanted });
  }
  return ops;
}

/** Patches for every bootstrap template of an opted-in Cluster; RenderError when its settings are invalid. */
export function generatePatches(globalVariables: readonly Variable[], items: readonly GeneratePatchesItem[]): PatchResult[] {
  const results: PatchResult[] = [];
  for (const item of items) {
    const specPath = kubeadmSpecPath(item);
    if (!specPath) continue;
    const variables = mergeVariables(globalVariables, item.variables);
    const optIn = optInOf(variables);
    if (optIn.enabled === false) continue;
    if (optIn.enabled === 'invalid') throw new RenderError(optIn.message);
    const builtin = variables.get('builtin');
    const cluster = isObject(builtin) && isObject(builtin.cluster) ? builtin.cluster : {};
    const network = isObject(cluster.network) ? cluster.network : {};
    if (typeof cluster.name !== 'string' || !cluster.name) throw new RenderError('variable builtin.cluster.name is missing: CAPI always sends it; is this request from Cluster API?');
    const config = readRegistryConfig(optIn.config);
    const services = Array.isArray(network.services) ? network.services.filter((s): s is string => typeof s === 'string') : [];
    const layout = registryLayout(config.replicas, typeof network.serviceDomain === 'string' ? network.serviceDomain : undefined, services);
    const ops = kubeadmPatch(item.object, specPath, nodeFiles(cluster.name, layout, config));
    if (ops.length) results.push({ uid: item.uid, patchType: 'JSONPatch', patch: base64FromText(JSON.stringify(ops)) });
  }
  return results;
}

/** The Cluster the request is for (from `builtin.cluster`), opted in or not: day-2 convergence checks it against the API server. */
export function patchedCluster(globalVariables: readonly Variable[], items: readonly GeneratePatchesItem[]): { namespace: string; name: string; registry: string } | undefined {
  for (const item of items) {
    const variables = mergeVariables(globalVariables, item.variables);
    const builtin = variables.get('builtin');
    const cluster = isObject(builtin) && isObject(builtin.cluster) ? builtin.cluster : {};
    // What the request says of the registry (opt-in and every knob), so that a change is converged at once.
    const optIn = optInOf(variables);
    const registry = registryState(optIn);
    if (typeof cluster.name === 'string' && cluster.name && typeof cluster.namespace === 'string' && cluster.namespace) return { namespace: cluster.namespace, name: cluster.name, registry };
  }
  return undefined;
}
