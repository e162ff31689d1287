// Opt-in: a Cluster gets the registry when `clusterConfig.addons.registry` is present (an object,
// `{}` meaning "all defaults"). Absent or null means the Cluster has not opted in and every hook must
// leave it alone.
import type { Variable } from '../runtime-sdk/types.ts';

export const CLUSTER_CONFIG_VARIABLE = 'clusterConfig';

export type RegistryOptIn =
  | { enabled: false }
  | { enabled: true; config: Record<string, unknown> }
  | { enabled: 'invalid'; message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads the opt-in from topology variables (Cluster) or hook variables (GeneratePatches). */
export function registryOptIn(variables: readonly Variable[]): RegistryOptIn {
  // Later entries win, as CAPI's item variables override the global ones.
  const clusterConfig = variables.findLast((v) => v.name === CLUSTER_CONFIG_VARIABLE)?.value;
  if (clusterConfig === undefined || clusterConfig === null) return { enabled: false };
  if (!isObject(clusterConfig)) return { enabled: 'invalid', message: 'variable clusterConfig must be an object' };
  const addons = clusterConfig.addons;
  if (addons === undefined || addons === null) return { enabled: false };
  if (!isObject(addons)) return { enabled: 'invalid', message: 'variable clusterConfig.addons must be an object' };
  const registry = addons.registry;
  if (registry === undefined || registry === null) return { enabled: false };
  if (!isObject(registry)) {
    return { enabled: 'invalid', message: 'variable clusterConfig.addons.registry must be an object: use {} for the defaults' };
  }
  return { enabled: true, config: registry };
}

/** The opt-in as one comparable string (opt-in and every knob): what GeneratePatches claims and what the API server says are compared by it. */
export const registryState = (optIn: RegistryOptIn): string => JSON.stringify(optIn.enabled === true ? optIn.config : optIn.enabled);
