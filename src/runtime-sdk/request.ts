// Validation of hook request bodies. CAPI v1.10–v1.12 send a v1beta1 Cluster, v1.13 a v1beta2 one,
// older ones add status/managedFields, and any of them may add fields we do not know: validate only
// what we read, and say exactly what is wrong when it is missing.
import type { HookSpec } from './catalog.ts';
import { HOOKS_API_VERSION, type ClusterRef, type GeneratePatchesItem, type Variable } from './types.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export interface LifecycleRequest {
  kind: 'lifecycle';
  settings: Record<string, string>;
  cluster: ClusterRef;
  fields: Record<string, string>;
}
export interface GeneratePatchesRequest {
  kind: 'generatePatches';
  settings: Record<string, string>;
  variables: Variable[];
  items: GeneratePatchesItem[];
}
export interface DiscoverVariablesRequest {
  kind: 'discoverVariables';
  settings: Record<string, string>;
}
export type HookRequest = LifecycleRequest | GeneratePatchesRequest | DiscoverVariablesRequest;
/** BeforeClusterUpgrade carries the versions (its spec's requiredStrings). */
export interface BeforeClusterUpgradeRequest extends LifecycleRequest {
  fields: { fromKubernetesVersion: string; toKubernetesVersion: string };
}

/** Each hook's own request, as parseHookRequest shapes it for that hook's spec. */
export interface HookRequests {
  BeforeClusterCreate: LifecycleRequest;
  AfterControlPlaneInitialized: LifecycleRequest;
  BeforeClusterUpgrade: BeforeClusterUpgradeRequest;
  BeforeClusterDelete: LifecycleRequest;
  GeneratePatches: GeneratePatchesRequest;
  DiscoverVariables: DiscoverVariablesRequest;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const fail = (message: string): Parsed<never> => ({ ok: false, message });
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
// Names in messages are echoed back to CAPI and into conditions; keep them short and printable.
const show = (v: unknown): string => {
  const text = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 64 ? `${clean.slice(0, 64)}...` : clean);
};

/** Checks apiVersion and kind: a body meant for another hook must not be acted on. */
export function checkEnvelope(body: unknown, expectedKind: string): Parsed<Json> {
  if (!isObject(body)) return fail(`request body must be a JSON object (a ${expectedKind})`);
  if (body.apiVersion !== HOOKS_API_VERSION) {
    return fail(`request apiVersion ${show(body.apiVersion)} is not ${HOOKS_API_VERSION}: this extension speaks only that version`);
  }
  if (body.kind !== expectedKind) return fail(`request kind ${show(body.kind)} does not match this endpoint: expected ${expectedKind}`);
  return ok(body);
}

function parseSettings(body: Json): Parsed<Record<string, string>> {
  const settings = body.settings;
  if (settings === undefined || settings === null) return ok({});
  if (!isObject(settings)) return fail('settings must be a map of strings');
  for (const [key, value] of Object.entries(settings)) {
    if (typeof value !== 'string') return fail(`settings.${key} must be a string`);
  }
  return ok(settings as Record<string, string>);
}

function parseVariables(value: unknown, where: string): Parsed<Variable[]> {
  if (value === undefined || value === null) return ok([]); // v1.9 sends null, v1.10+ omits
  if (!Array.isArray(value)) return fail(`${where} must be a list of {name, value}`);
  const out: Variable[] = [];
  for (const [i, v] of value.entries()) {
    if (!isObject(v) || typeof v.name !== 'string' || v.name === '') return fail(`${where}[${i}] must have a non-empty string name`);
    out.push({ name: v.name, value: v.value });
  }
  return ok(out);
}

const stringList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/** Reads a Cluster in either shape; v1beta1 and v1beta2 agree on every field read here. */
export function parseCluster(value: unknown): Parsed<ClusterRef> {
  if (!isObject(value)) return fail('cluster is missing: every lifecycle request must carry the Cluster object');
  const metadata = value.metadata;
  if (!isObject(metadata)) return fail('cluster.metadata is missing');
  if (typeof metadata.name !== 'string' || metadata.name === '') return fail('cluster.metadata.name is missing');
  if (typeof metadata.namespace !== 'string' || metadata.namespace === '') return fail('cluster.metadata.namespace is missing');
  const spec = value.spec;
  if (spec !== undefined && spec !== null && !isObject(spec)) return fail('cluster.spec must be an object');
  const topology = isObject(spec) ? spec.topology : undefined;
  if (topology !== undefined && topology !== null && !isObject(topology)) return fail('cluster.spec.topology must be an object');
  const variables = parseVariables(isObject(topology) ? topology.variables : undefined, 'cluster.spec.topology.variables');
  if (!variables.ok) return variables;
  const network = isObject(spec) && isObject(spec.clusterNetwork) ? spec.clusterNetwork : {};
  const services = isObject(network.services) ? network.services : {};
  return ok({
    name: metadata.name,
    namespace: metadata.namespace,
    ...(typeof metadata.uid === 'string' ? { uid: metadata.uid } : {}),
    variables: variables.value,
    serviceCidrs: stringList(services.cidrBlocks),
    ...(typeof network.serviceDomain === 'string' && network.serviceDomain ? { serviceDomain: network.serviceDomain } : {}),
    raw: value,
  });
}

function parseItems(value: unknown): Parsed<GeneratePatchesItem[]> {
  if (value === undefined || value === null) return ok([]);
  if (!Array.isArray(value)) return fail('items must be a list');
  const items: GeneratePatchesItem[] = [];
  for (const [i, item] of value.entries()) {
    if (!isObject(item)) return fail(`items[${i}] must be an object`);
    if (typeof item.uid !== 'string' || item.uid === '') return fail(`items[${i}].uid is missing`);
    const holder = item.holderReference;
    if (!isObject(holder) || typeof holder.kind !== 'string' || typeof holder.fieldPath !== 'string') {
      return fail(`items[${i}].holderReference must have kind and fieldPath`);
    }
    if (!isObject(item.object)) return fail(`items[${i}].object must be an object`);
    const variables = parseVariables(item.variables, `items[${i}].variables`);
    if (!variables.ok) return variables;
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    items.push({
      uid: item.uid,
      holderReference: {
        apiVersion: text(holder.apiVersion),
        kind: holder.kind,
        namespace: text(holder.namespace),
        name: text(holder.name),
        fieldPath: holder.fieldPath,
      },
      object: item.object,
      variables: variables.value,
    });
  }
  return ok(items);
}

/** Validates a decoded body for one hook; the message names the field at fault. */
export function parseHookRequest(spec: HookSpec, body: unknown): Parsed<HookRequest> {
  const envelope = checkEnvelope(body, `${spec.hook}Request`);
  if (!envelope.ok) return envelope;
  const json = envelope.value;
  const settings = parseSettings(json);
  if (!settings.ok) return settings;
  switch (spec.shape) {
    case 'discoverVariables':
      return ok({ kind: 'discoverVariables', settings: settings.value });
    case 'generatePatches': {
      const variables = parseVariables(json.variables, 'variables');
      if (!variables.ok) return variables;
      const items = parseItems(json.items);
      if (!items.ok) return items;
      return ok({ kind: 'generatePatches', settings: settings.value, variables: variables.value, items: items.value });
    }
    case 'lifecycle': {
      const cluster = parseCluster(json.cluster);
      if (!cluster.ok) return cluster;
      const fields: Record<string, string> = {};
      for (const name of spec.requiredStrings) {
        const v = json[name];
        if (typeof v !== 'string' || v === '') return fail(`${name} is missing: ${spec.hook}Request must carry it`);
        fields[name] = v;
      }
      return ok({ kind: 'lifecycle', settings: settings.value, cluster: cluster.value, fields });
    }
  }
}
