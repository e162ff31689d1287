// The registry addon's answer to each hook. Clusters that have not opted in are left alone on every
// hook (Success, no changes). The registry deployment itself (BCC/ACPI/BCU/delete and the node patches)
// is not in this build yet: an opted-in Cluster gets a Failure that says so, never a false Success.
import type { HookName } from '../runtime-sdk/catalog.ts';
import type { HookRequest } from '../runtime-sdk/request.ts';
import { failure, success, type HookResult, type Variable } from '../runtime-sdk/types.ts';
import type { HookContext } from '../runtime-sdk/wrapper.ts';
import { clusterConfigVariable } from '../render/variables.ts';
import { registryOptIn } from './opt-in.ts';

export type AddonHandler = (request: HookRequest, ctx: HookContext) => Promise<HookResult>;

const notBuiltYet = (hook: HookName) =>
  failure(
    `clusterConfig.addons.registry is set, but this build of capi-registry-addon cannot deploy the registry yet (${hook}): ` +
      'remove the variable from the Cluster or install a release that implements it',
  );

/** Variables an item sees: the request's, overridden by the item's own (CAPI's precedence). */
const itemVariables = (global: readonly Variable[], item: readonly Variable[]) => [...global, ...item];

function lifecycle(hook: HookName): AddonHandler {
  return async (request) => {
    if (request.kind !== 'lifecycle') throw new TypeError(`${hook} got a ${request.kind} request`);
    const optIn = registryOptIn(request.cluster.variables);
    if (optIn.enabled === 'invalid') return failure(`Cluster ${request.cluster.namespace}/${request.cluster.name}: ${optIn.message}`);
    if (!optIn.enabled) return success();
    return notBuiltYet(hook);
  };
}

const generatePatches: AddonHandler = async (request) => {
  if (request.kind !== 'generatePatches') throw new TypeError(`GeneratePatches got a ${request.kind} request`);
  for (const item of request.items) {
    const optIn = registryOptIn(itemVariables(request.variables, item.variables));
    if (optIn.enabled === 'invalid') return failure(optIn.message);
    if (optIn.enabled) return notBuiltYet('GeneratePatches');
  }
  return success(undefined, { items: [] });
};

const discoverVariables: AddonHandler = async () => success(undefined, { variables: [clusterConfigVariable] });

export const addonHandlers: Record<HookName, AddonHandler> = {
  BeforeClusterCreate: lifecycle('BeforeClusterCreate'),
  AfterControlPlaneInitialized: lifecycle('AfterControlPlaneInitialized'),
  BeforeClusterUpgrade: lifecycle('BeforeClusterUpgrade'),
  BeforeClusterDelete: lifecycle('BeforeClusterDelete'),
  GeneratePatches: generatePatches,
  DiscoverVariables: discoverVariables,
};
