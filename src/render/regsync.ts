// One regsync config per registry pod: pull from every OTHER replica into this pod's own registry
// (127.0.0.1, which the server certificate carries), trusting only the root's ca.crt. The sidecar
// picks its file by POD_NAME. The reference chart synced every pod from itself as well and verified
// nothing; this does neither (formats.md §B10–B11).
import type { RegistryConfig } from './config.ts';
import { dumpYaml } from './distribution.ts';
import { hostPort, podHost, podNames, POD, REGISTRY, type RegistryLayout } from './metadata.ts';

export function regsyncConfigs(layout: RegistryLayout, config: RegistryConfig): Record<string, string> {
  const pods = podNames(layout.replicas);
  const local = hostPort('127.0.0.1', REGISTRY.containerPort);
  // regsync's own templating reads the credential from the mounted Secret: it never sits in the ConfigMap.
  const login = config.auth.enabled
    ? { user: `{{ file "${POD.regsyncAuthDir}/username" }}`, pass: `{{ file "${POD.regsyncAuthDir}/password" }}` }
    : {};
  const cred = (registry: string) => ({ registry, tls: 'enabled', regcert: `{{ file "${POD.regsyncCaFile}" }}`, ...login, reqConcurrent: 3 });
  const out: Record<string, string> = {};
  for (const pod of pods) {
    const peers = pods.filter((p) => p !== pod).map((p) => hostPort(podHost(p, layout.serviceDomain), REGISTRY.containerPort));
    out[`${pod}.yml`] = dumpYaml({
      version: 1,
      creds: [cred(local), ...peers.map(cred)],
      defaults: { parallel: 4, interval: config.syncInterval },
      sync: peers.map((peer) => ({ source: peer, target: local, type: 'registry' })),
    });
  }
  return out;
}
