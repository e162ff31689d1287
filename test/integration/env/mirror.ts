// One Cluster's registry as the hooks make it, without the hooks: the plan for a service CIDR, a
// root-signed issuer and the server certificate it signs, fresh credentials, the node files.
import { basicAuthorization, newPassword, type Credentials } from '../../../src/addon/credentials.ts';
import { clusterRegistry } from '../../../src/addon/layout.ts';
import { registryPlan } from '../../../src/addon/plan.ts';
import { mintClusterIssuer } from '../../../src/pki/cluster-issuer.ts';
import { mintRootCa, parseRootCa } from '../../../src/pki/root-ca.ts';
import { issueServerCertificate } from '../../../src/pki/server-cert.ts';
import { serverCertSans } from '../../../src/render/metadata.ts';
import { enableMirrorScript, hostsToml } from '../../../src/render/node-files.ts';
import { parseCluster } from '../../../src/runtime-sdk/request.ts';

export async function clusterMirror(cidr: string, knobs: Record<string, unknown> = {}) {
  const parsed = parseCluster({ metadata: { name: 'c1', namespace: 'default' }, spec: { clusterNetwork: { services: { cidrBlocks: [cidr] } }, topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: knobs } } }] } } });
  if (!parsed.ok) throw new Error(parsed.message);
  const registry = clusterRegistry(parsed.value)!;
  const plan = await registryPlan(parsed.value, registry);
  const root = await parseRootCa(await mintRootCa({ now: new Date() }), 'root');
  const issuer = await parseRootCa(await mintClusterIssuer(root, { cluster: 'default/c1', now: new Date() }), 'issuer');
  const tls = await issueServerCertificate(issuer, { ...serverCertSans(registry.layout), now: new Date() });
  const creds: Credentials = { node: { username: 'node', password: newPassword() }, push: { username: 'push', password: newPassword() }, previous: [] };
  const configMap = (name: string) => (plan.workload.find((o: any) => o.kind === 'ConfigMap' && o.metadata.name === name) as any)?.data as Record<string, string> | undefined;
  const config = configMap('registry-config')!['config.yml']!;
  const files = { hostsToml: hostsToml(registry.layout, registry.config, basicAuthorization(creds.node)), ca: issuer.certPem, script: enableMirrorScript() };
  // The test's own client trusts the root (it builds the chain the registry serves); nodes trust the issuer.
  return { registry, plan, tls: { ...tls, 'ca.crt': root.certPem }, creds, config, syncConfig: configMap('registry-sync'), files, root, issuer };
}
