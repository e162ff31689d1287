// What every node gets (KubeadmConfig `files`, `preKubeadmCommands`, `postKubeadmCommands`), all under one directory of
// ours: the mirror's hosts.toml, the CA its nodes trust, and the script that makes containerd use them
// (src/render/node/enable-mirror.sh). The script, not kubeadm, writes certs.d: another patch's
// `_default/hosts.toml` or a node image's per-registry directories are kept, with the mirror first.
import type { RegistryConfig } from './config.ts';
import { clusterCaSecretName, hostPort, NODE, NODE_SCRIPT_KEY, nodeCredentialSecretName, nodeScriptSecretName, REGISTRY, type RegistryLayout } from './metadata.ts';
import { toToml } from './toml.ts';
import enableMirrorSh from './node/enable-mirror.sh';

export interface KubeadmFile {
  path: string;
  owner: string;
  permissions: string;
  content?: string;
  contentFrom?: { secret: { name: string; key: string } };
}

/**
 * `_default/hosts.toml`: the writer first (it holds every push the moment the push returns), then, with
 * more than one replica, the standby Service (replicas in sync with the writer), then (implicitly) each
 * image's own registry. containerd moves to the next host when one refuses the connection (the writer's
 * Service without a Ready pod) or answers 404. With auth on, `authorization` is the node credential's
 * header value: the file is then a secret and reaches nodes only from a Secret (contentFrom), never
 * inline in a template.
 */
export function hostsToml(layout: RegistryLayout, config: RegistryConfig, authorization?: string): string {
  const host = {
    // pull+resolve: tags resolve at the mirror too, so a node needs no upstream for cached images.
    capabilities: ['pull', 'resolve'],
    ca: NODE.caFile,
    // The URL path is the API root as written; containerd appends `/<repo>/manifests/...`.
    override_path: true,
    // containerd >= 2.0.14 honours it; 1.6/1.7 ignore the key (the script's fast-fail rule covers them).
    dial_timeout: config.containerd.dialTimeout,
    // containerd sends configured headers to the mirror only, never to the upstream.
    ...(authorization ? { header: { authorization } } : {}),
  };
  const addresses = layout.replicas > 1 ? [layout.serviceIp, layout.standbyIp] : [layout.serviceIp];
  return toToml({ host: Object.fromEntries(addresses.map((ip) => [`https://${hostPort(ip, REGISTRY.servicePort)}/v2`, host])) });
}

/**
 * The node-side program (a POSIX shell script, checked by shellcheck in `npm test`): points the CRI at
 * a hosts directory in whichever config format the node's containerd reads (1.6 to 2.4, versions 2, 3,
 * 4 and none), puts the mirror first in every hosts.toml there, and makes the Service IP fail fast
 * until kube-proxy serves it. It leaves what it cannot edit safely alone and says why (status file).
 */
export const enableMirrorScript = (): string => enableMirrorSh;

export interface NodeFiles {
  files: KubeadmFile[];
  preKubeadmCommands: string[];
  /** After kubeadm: the script reports the mirror's state on the node's Node (annotation NODE_MIRROR_ANNOTATION). */
  postKubeadmCommands: string[];
}

export function nodeFiles(clusterName: string, layout: RegistryLayout, config: RegistryConfig): NodeFiles {
  return {
    files: [
      config.auth.enabled
        ? { path: NODE.hostsToml, owner: 'root:root', permissions: '0600', contentFrom: { secret: { name: nodeCredentialSecretName(clusterName), key: 'hosts.toml' } } }
        : { path: NODE.hostsToml, owner: 'root:root', permissions: '0644', content: hostsToml(layout, config) },
      { path: NODE.caFile, owner: 'root:root', permissions: '0644', contentFrom: { secret: { name: clusterCaSecretName(clusterName), key: 'ca.crt' } } },
      // From a Secret, not inline: CAPI's kubeadm CRDs cap an inline file at 10,240 bytes (the real API
      // server refused the script inline), and a new script then reaches new nodes without rolling the old.
      { path: NODE.enableScript, owner: 'root:root', permissions: '0755', contentFrom: { secret: { name: nodeScriptSecretName(clusterName), key: NODE_SCRIPT_KEY } } },
    ],
    preKubeadmCommands: [NODE.enableScript],
    postKubeadmCommands: [`${NODE.enableScript} report`],
  };
}
