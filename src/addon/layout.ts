// From a Cluster to the registry's effective configuration and layout (replicas, names, Service IP).
import { registryOptIn } from './opt-in.ts';
import { readRegistryConfig, type Images, type RegistryConfig } from '../render/config.ts';
import { registryLayout, RenderError, type RegistryLayout } from '../render/metadata.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import type { SourceConfig } from '../render/sources.ts';

export interface ClusterRegistry {
  config: RegistryConfig;
  layout: RegistryLayout;
}

/**
 * The registry of an opted-in Cluster; undefined when it has not opted in; RenderError when invalid.
 * `defaultSource`: the platform's (--default-source), for a Cluster that names no `sources` of its own.
 */
export function clusterRegistry(cluster: ClusterRef, images?: Images, defaultSource?: SourceConfig): ClusterRegistry | undefined {
  const optIn = registryOptIn(cluster.variables);
  if (optIn.enabled === false) return undefined;
  if (optIn.enabled === 'invalid') throw new RenderError(optIn.message);
  const config = readRegistryConfig(optIn.config, images);
  if (config.sources === undefined && defaultSource) config.sources = [defaultSource];
  return {
    config,
    layout: registryLayout(config.replicas, cluster.serviceDomain, cluster.serviceCidrs),
  };
}
