// Everything the addon creates for one opted-in Cluster, as data: the `render` command prints it and
// the hooks apply it. Secrets appear with placeholders: their values exist only where they are made.
import { hostsToml, nodeFiles, type NodeFiles } from '../render/node-files.ts';
import { clusterCaSecretName, NODE_SCRIPT_KEY, nodeCredentialSecretName, nodeScriptSecretName, pushCredentialSecretName, REGISTRY, serverCertSans } from '../render/metadata.ts';
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

const secretPlaceholder = (name: string, namespace: string, type: string, stringData: Record<string, string>): Obj => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type, stringData,
});

export async function registryPlan(cluster: ClusterRef, registry: ClusterRegistry, opts: { tlsCertSha256?: string; authSha256?: string; gcAt?: string; sourcesSha256?: string } = {}): Promise<RegistryPlan> {
  const sans = serverCertSans(registry.layout);
  const auth = registry.config.auth.enabled;
  return {
    management: [{
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: clusterCaSecretName(cluster.name), namespace: cluster.namespace, labels: { 'cluster.x-k8s.io/cluster-name': cluster.name, ...REGISTRY.labels } },
      type: 'Opaque',
      stringData: { 'ca.crt': `<the Cluster's registry issuer certificate, signed by ${ROOT_CA_SECRET}>` },
    },
    secretPlaceholder(nodeScriptSecretName(cluster.name), cluster.namespace, 'Opaque', { [NODE_SCRIPT_KEY]: '<src/render/node/enable-mirror.sh of this build>' }),
    ...(auth
      ? [
          secretPlaceholder(nodeCredentialSecretName(cluster.name), cluster.namespace, 'Opaque', {
            username: 'node',
            password: '<random 256-bit, made once>',
            'hosts.toml': hostsToml(registry.layout, registry.config, 'Basic <base64 of node:password>'),
          }),
          secretPlaceholder(pushCredentialSecretName(cluster.name), cluster.namespace, 'kubernetes.io/basic-auth', { username: 'push', password: '<random 256-bit, made once>' }),
        ]
      : [])],
    workload: [
      ...(await workloadManifests({ layout: registry.layout, config: registry.config, tlsCertSha256: opts.tlsCertSha256 ?? PLACEHOLDER_TLS_SHA, authSha256: opts.authSha256, gcAt: opts.gcAt, sourcesSha256: opts.sourcesSha256 })),
      secretPlaceholder(REGISTRY.tlsSecret, REGISTRY.namespace, 'kubernetes.io/tls', {
        'tls.crt': `<server certificate: CN=${sans.commonName}; DNS ${sans.dnsNames.join(', ')}; IP ${sans.ipAddresses.join(', ')}; then the Cluster's issuer>`,
        'tls.key': '<private key, written only to the workload cluster>',
        'ca.crt': `<the Cluster's registry issuer certificate>`,
      }),
      secretPlaceholder(REGISTRY.httpSecret, REGISTRY.namespace, 'Opaque', { secret: '<random, shared by all replicas>' }),
      ...(auth
        ? [
            secretPlaceholder(REGISTRY.authSecret, REGISTRY.namespace, 'Opaque', { htpasswd: 'node:<bcrypt of the node password>\npush:<bcrypt of the push password>\n' }),
            secretPlaceholder(REGISTRY.syncAuthSecret, REGISTRY.namespace, 'Opaque', { username: 'node', password: '<the node password>' }),
          ]
        : []),
    ],
    nodes: nodeFiles(cluster.name, registry.layout, registry.config),
  };
}
