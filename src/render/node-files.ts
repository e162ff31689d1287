// What every node gets (KubeadmConfig `files` and `preKubeadmCommands`): containerd's hosts.toml that
// makes the registry the first mirror for every registry, the CA that signs it, and a script that
// points the CRI at /etc/containerd/certs.d without touching any other setting.
import type { RegistryConfig } from './config.ts';
import { clusterCaSecretName, hostPort, NODE, nodeCredentialSecretName, REGISTRY, type RegistryLayout } from './metadata.ts';
import { toToml } from './toml.ts';

export interface KubeadmFile {
  path: string;
  owner: string;
  permissions: string;
  content?: string;
  contentFrom?: { secret: { name: string; key: string } };
}

/**
 * `_default/hosts.toml`: the registry first, then (implicitly) each image's own registry. With auth on,
 * `authorization` is the node credential's header value: the file is then a secret and reaches nodes
 * only from a Secret (contentFrom), never inline in a template.
 */
export function hostsToml(layout: RegistryLayout, config: RegistryConfig, authorization?: string): string {
  return toToml({
    host: {
      [`https://${hostPort(layout.serviceIp, REGISTRY.servicePort)}/v2`]: {
        // pull+resolve: tags resolve at the mirror too, so a node needs no upstream for cached images.
        capabilities: ['pull', 'resolve'],
        ca: NODE.caFile,
        // The URL path is the API root as written; containerd appends `/<repo>/manifests/...`.
        override_path: true,
        // containerd >= 2.1 honours it; older ones ignore the key and wait for the dial to fail.
        dial_timeout: config.containerd.dialTimeout,
        // containerd sends configured headers to the mirror only, never to the upstream.
        ...(authorization ? { header: { authorization } } : {}),
      },
    },
  });
}

/**
 * Makes the CRI read /etc/containerd/certs.d, editing containerd's config.toml in place and touching
 * no other line: a 1.x `imports` drop-in would replace the whole CRI section (sandbox image, cgroup
 * driver...), so a drop-in is not an option there. Handles config version 2 (containerd 1.6/1.7, and
 * files without a version) and version 3 (containerd 2.x, whose `config default` quotes keys with '...').
 * An existing config_path is kept and ours appended (its roots keep precedence); a config with legacy
 * `registry.mirrors` is left alone, because containerd refuses config_path next to them (the CRI
 * plugin would not load). Idempotent; restarts containerd only when the file changed.
 */
export function enableConfigPathScript(): string {
  return `#!/bin/sh
# Written by capi-registry-addon. Usage: ${NODE.enableScript} [CONFIG] [--no-restart]
set -eu
CONFIG=\${1:-${NODE.containerdConfig}}
RESTART=yes
[ "\${2:-}" = --no-restart ] && RESTART=no
CERTS_D=${NODE.hostsDir}
if [ ! -s "$CONFIG" ]; then
  mkdir -p "$(dirname "$CONFIG")"
  containerd config default > "$CONFIG"
fi
if grep -Eq '^[[:space:]]*version[[:space:]]*=[[:space:]]*3([[:space:]]|$)' "$CONFIG"; then
  SECTION='plugins."io.containerd.cri.v1.images".registry'
else
  SECTION='plugins."io.containerd.grpc.v1.cri".registry'
fi
# Table headers are compared with blanks removed and '...' keys written as "...".
NORMALIZE='function header(s) { gsub(/[ \\t]/, "", s); gsub(/\\047/, "\\"", s); return s }'
if awk -v s="[$SECTION.mirrors." "$NORMALIZE"' index(header($0), s) == 1 { found = 1 } END { exit !found }' "$CONFIG"; then
  echo "capi-registry-addon: $CONFIG configures legacy registry mirrors; not setting config_path (containerd refuses both). The in-cluster mirror is not used on this node." >&2
  exit 0
fi
TMP="$CONFIG.capi-registry-addon.tmp"
awk -v section="[$SECTION]" -v ours="$CERTS_D" "$NORMALIZE"'
  function merged(value,   n, i, parts) {
    if (value == "") return ours
    n = split(value, parts, ":")
    for (i = 1; i <= n; i++) if (parts[i] == ours) return value
    return value ":" ours
  }
  /^[ \\t]*\\[/ {
    if (inside && !done) { print "  config_path = \\"" ours "\\""; done = 1 }
    inside = (header($0) == section); if (inside) seen = 1
  }
  inside && !done && /^[ \\t]*config_path[ \\t]*=/ {
    value = $0
    sub(/^[^=]*=[ \\t]*/, "", value); sub(/[ \\t]*(#.*)?$/, "", value); gsub(/^["\\047]|["\\047]$/, "", value)
    indent = $0; sub(/[^ \\t].*$/, "", indent)
    if (merged(value) == value) print; else print indent "config_path = \\"" merged(value) "\\""
    done = 1; next
  }
  { print }
  END {
    if (inside && !done) print "  config_path = \\"" ours "\\""
    if (!seen) { print ""; print section; print "  config_path = \\"" ours "\\"" }
  }
' "$CONFIG" > "$TMP"
if cmp -s "$CONFIG" "$TMP"; then
  rm -f "$TMP"
  exit 0
fi
cat "$TMP" > "$CONFIG"
rm -f "$TMP"
if [ "$RESTART" = yes ] && command -v systemctl >/dev/null 2>&1; then
  systemctl restart containerd
fi
`;
}

export interface NodeFiles {
  files: KubeadmFile[];
  preKubeadmCommands: string[];
}

export function nodeFiles(clusterName: string, layout: RegistryLayout, config: RegistryConfig): NodeFiles {
  return {
    files: [
      config.auth.enabled
        ? { path: NODE.hostsToml, owner: 'root:root', permissions: '0600', contentFrom: { secret: { name: nodeCredentialSecretName(clusterName), key: 'hosts.toml' } } }
        : { path: NODE.hostsToml, owner: 'root:root', permissions: '0644', content: hostsToml(layout, config) },
      { path: NODE.caFile, owner: 'root:root', permissions: '0644', contentFrom: { secret: { name: clusterCaSecretName(clusterName), key: 'ca.crt' } } },
      { path: NODE.enableScript, owner: 'root:root', permissions: '0755', content: enableConfigPathScript() },
    ],
    preKubeadmCommands: [NODE.enableScript],
  };
}
