// Where the real components are: scripts/components.sh builds or installs them and writes
// components.json. A missing component fails the run with its name; nothing is skipped.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Components {
  kubeApiserver: { version: string; path: string };
  etcd: { version: string; path: string };
  kubeControllerManager: { version: string; path: string };
  /** What node images carry beside kubeadm: the node script reports with it. */
  kubectl: { version: string; path: string };
  registry: { version: string; path: string };
  /** Debian's docker-registry (Distribution 2.8): the rendered config must work on 2.8 and 3.x. */
  registry2: { version: string; path: string };
  regbot: { version: string; path: string };
  regctl: { version: string; path: string };
  zlint: { version: string; path: string };
  helm: { version: string; path: string };
  caaph: { version: string; path: string };
  containerd: { version: string; path: string; ctr: string };
  containerdMatrix: { version: string; path: string }[];
  crictl: { version: string; path: string };
  /** clusterctl of the current CAPI release, and that release's own metadata.yaml (the core provider's release series). */
  clusterctl: { version: string; path: string; metadata: string };
  /** The CAPI core managers the real-CAPI suite runs, with the CRD folders of each version. */
  capiManagers: { version: string; path: string; crds: string[] }[];
  crds: Record<'capi' | 'caaph' | 'certManager', { version: string; dirs: string[] }>;
  /** The real-node suite's workload cluster and kubelets (the newest Kubernetes served), and the sandbox program. */
  nodeKube: {
    version: string; kubeApiserver: string; kubeControllerManager: string; kubeScheduler: string; kubelet: string; kubeProxy: string; kubectl: string;
    pause: { tag: string; path: string };
  };
  cniPlugins: { version: string; bridge: string; 'host-local': string; loopback: string; portmap: string };
  /** containerd's runc shim for the real-node suite's worker line (`debian`: the one Debian's containerd 1.6 ships). */
  containerdShim: { version: string; path: string; debian: string };
  coredns: { version: string; path: string };
  localPathProvisioner: { version: string; path: string };
  /** CAPI's kubeadm bootstrap provider, of the current CAPI release. */
  capiKubeadmBootstrap: { version: string; path: string };
  /** Debian's busybox-static: the registry image's /bin/sh. */
  busybox: { version: string; path: string };
}

let cached: Components | undefined;

export const componentsCache = () => process.env.COMPONENTS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'capi-registry-addon');

export function components(): Components {
  cached ??= loadComponents(componentsCache());
  return cached;
}

/** Reads components.json of a cache folder; throws naming the first missing component. */
export function loadComponents(cache: string): Components {
  const file = join(cache, 'components.json');
  if (!existsSync(file)) throw new Error(`real components are missing (${file}): run 'bash scripts/components.sh' (.ci/run does)`);
  const c = JSON.parse(readFileSync(file, 'utf8')) as Components;
  for (const [name, entry] of Object.entries(c)) {
    if ('path' in entry && !existsSync(entry.path)) throw new Error(`component ${name} ${entry.version} is missing at ${entry.path}: run 'bash scripts/components.sh'`);
  }
  for (const [what, list] of [['containerd', c.containerdMatrix], ['CAPI manager', c.capiManagers]] as const) {
    for (const e of list ?? []) if (!existsSync(e.path)) throw new Error(`${what} ${e.version} is missing at ${e.path}: run 'bash scripts/components.sh'`);
  }
  const nested = [c.nodeKube && Object.values(c.nodeKube).filter((v) => typeof v === 'string' && v.startsWith('/')), c.nodeKube && [c.nodeKube.pause.path], c.cniPlugins && Object.values(c.cniPlugins).slice(1)];
  for (const path of nested.flat()) if (path && !existsSync(path as string)) throw new Error(`a real-node component is missing at ${path}: run 'bash scripts/components.sh'`);
  for (const [name, crd] of Object.entries(c.crds)) {
    for (const dir of crd.dirs) if (!existsSync(dir)) throw new Error(`CRDs of ${name} ${crd.version} are missing at ${dir}: run 'bash scripts/components.sh'`);
  }
  return c;
}
