// Everything the addon creates for one opted-in Cluster, as data: the `render` command prints it and
// the hooks apply it. Secrets appear with placeholders: their values exist only where they are made.
import { nodeFiles, type NodeFiles } from '../render/node-files.ts';
import { clusterCaSecretName, REGISTRY, serverCertSans } from '../render/metadata.ts';
import { workloadManifests } from '../render/workload.ts';
import { ROOT_CA_SECRET } from '../pki/root-ca.ts';
import type { ClusterRef } from '../runtime-sdk/types.ts';
import type { ClusterRegistry } from './layout.ts';

type Obj = Record<string, unknown>;

export interface RegistryPlan {
  management: Obj[];
  workload: Obj[];
  nodes: NodeFiles;
}

const PLACEHOLDER_TLS_SHA = '0'.repeat(64);

export async function registryPlan(cluster: ClusterRef, registry: ClusterRegistry, opts: { tlsCertSha256?: string } = {}): Promise<RegistryPlan> {
  const sans = serverCertSans(registry.layout);
  return {
    management: [{
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: clusterCaSecretName(cluster.name), namespace: cluster.namespace, labels: { 'cluster.x-k8s.io/cluster-name': cluster.name, ...REGISTRY.labels } },
      type: 'Opaque',
      stringData: { 'ca.crt': `<ca.crt of ${ROOT_CA_SECRET}>` },
    }],
    workload: [
      ...(await workloadManifests({ layout: registry.layout, config: registry.config, tlsCertSha256: opts.tlsCertSha256 ?? PLACEHOLDER_TLS_SHA })),
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: REGISTRY.tlsSecret, namespace: REGISTRY.namespace },
        type: 'kubernetes.io/tls',
        stringData: {
          'tls.crt': `<server certificate: CN=${sans.commonName}; DNS ${sans.dnsNames.join(', ')}; IP ${sans.ipAddresses.join(', ')}>`,
          'tls.key': '<private key, written only to the workload cluster>',
          'ca.crt': `<ca.crt of ${ROOT_CA_SECRET}>`,
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: REGISTRY.httpSecret, namespace: REGISTRY.namespace },
        type: 'Opaque',
        stringData: { secret: '<random, shared by all replicas>' },
      },
    ],
    nodes: nodeFiles(cluster.name, registry.layout, registry.config),
  };
}
