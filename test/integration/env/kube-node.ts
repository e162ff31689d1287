// A real Kubernetes node on this machine: its own network namespace on the nodes' bridge, its own mount
// and UTS namespaces (hostname = Node name; /etc/containerd, /var/lib/kubelet, /opt/cni/bin... bound
// from the node's folder), containerd through its CRI, runc, the CNI plugins (bridge, host-local,
// loopback, portmap), a kubelet and kube-proxy (iptables mode). No systemd: the test starts and restarts
// the services where a node's init system would. cgroup v1 (these machines), cgroupfs driver, each
// kubelet under a cgroup root of its own.
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, StopWaiting, waitFor, workDir, type Started } from './base.ts';
import { components } from './components.ts';
import type { NetNs } from './node.ts';
import { UPSTREAM_NAMES } from './node.ts';
import type { NodeImage } from './node-images.ts';

export const CLUSTER_DNS = 'cluster.local';

export interface KubeNodeOptions {
  name: string;
  /** The node's network namespace, with its address on the nodes' bridge. */
  netns: NetNs;
  ip: string;
  /** This node's pods' range (the CNI bridge's subnet). */
  podCidr: string;
  /** Every pod range of the cluster (kube-proxy's cluster CIDR). */
  clusterCidr: string;
  /** The kube-dns Service IP. */
  dnsIp: string;
  containerd: { version: string; path: string };
}

/** The folders bound at their real paths inside the node. */
const BINDS = {
  'etc-containerd': '/etc/containerd', 'var-lib-containerd': '/var/lib/containerd', 'run-containerd': '/run/containerd',
  'var-lib-kubelet': '/var/lib/kubelet', 'var-log-pods': '/var/log/pods', 'var-log-containers': '/var/log/containers',
  'etc-kubernetes': '/etc/kubernetes', 'cni-conf': '/etc/cni/net.d', 'cni-bin': '/opt/cni/bin', 'var-lib-cni': '/var/lib/cni',
  'run-netns': '/run/netns', 'run-kubeadm': '/run/kubeadm', 'run-cluster-api': '/run/cluster-api', volumes: '/opt/local-path-provisioner', bin: '/usr/local/bin', home: '/root',
} as const;

export class KubeNode {
  readonly dir: string;
  private holder?: Started;
  private pid = 0;
  private services = new Map<string, Started>();

  constructor(readonly opts: KubeNodeOptions) {
    this.dir = workDir('kn', opts.name);
    for (const d of Object.keys(BINDS)) mkdirSync(join(this.dir, d), { recursive: true });
  }

  get cgroupRoot() {
    return `/capi-registry-addon-${this.opts.name}`;
  }

  /** Makes the namespaces and the node's own files (binaries, CNI, containerd's config as a node image ships it). */
  async boot(): Promise<void> {
    const { name, netns, podCidr } = this.opts;
    const c = components();
    const bin = join(this.dir, 'bin');
    copyFileSync(this.opts.containerd.path, join(bin, 'containerd'));
    // The runc shim of the node's own containerd line.
    copyFileSync(this.opts.containerd.version === c.containerdShim.version ? c.containerdShim.path : c.containerdShim.debian, join(bin, 'containerd-shim-runc-v2'));
    copyFileSync(c.nodeKube.kubectl, join(bin, 'kubectl'));
    copyFileSync(c.crictl.path, join(bin, 'crictl'));
    for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap'] as const) copyFileSync(c.cniPlugins[plugin], join(this.dir, 'cni-bin', plugin));
    for (const d of ['bin', 'cni-bin']) for (const f of readdirSync(join(this.dir, d))) chmodSync(join(this.dir, d, f), 0o755);
    writeFileSync(join(this.dir, 'cni-conf', '10-pods.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'pods',
      plugins: [
        { type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', ranges: [[{ subnet: podCidr }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }, null, 2));
    // Upstream registry names resolve to a closed port: a pull that skips the mirror fails.
    writeFileSync(join(this.dir, 'hosts'), `127.0.0.1 localhost ${UPSTREAM_NAMES.join(' ')}\n${this.opts.ip} ${name}\n`);
    writeFileSync(join(this.dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions ndots:1\n');
    writeFileSync(join(this.dir, 'etc-kubernetes', 'crictl.yaml'), 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 120\n');
    // A test process killed outright (SIGKILL) left its node running: its processes are all in the node's cgroups.
    killCgroupProcesses(this.cgroupRoot);
    removeCgroups(this.cgroupRoot);
    makeCgroups(this.cgroupRoot);
    mkdirSync(join('/sys/fs/cgroup/pids', this.cgroupRoot, 'node'));
    spawnSync('ip', ['netns', 'exec', netns.name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.bridge.bridge-nf-call-iptables=1']);
    const binds = [...Object.entries(BINDS).map(([from, to]) => [join(this.dir, from), to]), [join(this.dir, 'hosts'), '/etc/hosts'], [join(this.dir, 'resolv.conf'), '/etc/resolv.conf']];
    const script = [
      // A mount point missing on this machine is made (as a folder: the file binds exist everywhere); a failed bind stops the node.
      ...binds.map(([from, to]) => `{ mkdir -p ${to} 2>/dev/null; mount --bind ${from} ${to}; }`),
      `hostname ${name}`, `echo $$ > ${join('/sys/fs/cgroup/pids', this.cgroupRoot, 'node', 'cgroup.procs')}`, `echo $$ > ${join(this.dir, 'holder.pid')}`, 'exec sleep 86400',
    ].join(' && ');
    // nsenter, not `ip netns exec`: that remounts /sys, and the kubelet would find no cgroup mounts.
    this.holder = startProcess(`node-${name}`, 'nsenter', [`--net=/run/netns/${netns.name}`, 'unshare', '-m', '-u', '--propagation', 'private', 'sh', '-c', script]);
    live.add(this);
    this.pid = await waitFor(`node ${name}'s namespaces`, async () => {
      if (this.holder!.proc.exitCode !== null) throw new StopWaiting(`the namespaces of node ${name} exited ${this.holder!.proc.exitCode}`);
      const f = join(this.dir, 'holder.pid');
      return existsSync(f) && readFileSync(f, 'utf8').trim() ? Number(readFileSync(f, 'utf8')) : undefined;
    }, 10_000, this.holder.logFile);
    // containerd's configuration as a node image ships it: the version's defaults, with this machine's
    // two needs (the sandbox image the node pre-loads; no negative oom_score_adj is allowed here).
    const defaults = this.run(['containerd', 'config', 'default']);
    if (defaults.status !== 0) throw new Error(`containerd config default: ${defaults.output}`);
    writeFileSync(join(this.dir, 'etc-containerd', 'config.toml'), defaults.stdout
      .replace(/registry\.k8s\.io\/pause:[\d.]+/g, `registry.k8s.io/pause:${c.nodeKube.pause.tag}`)
      .replace(/restrict_oom_score_adj = false/g, 'restrict_oom_score_adj = true'));
  }

  /**
   * argv inside the node (its mount, UTS and network namespaces), as root on the node would run it, in
   * the node's own cgroup (pids controller), so whatever a killed test process leaves is found by cgroup.
   */
  argv(args: string[]): [string, string[]] {
    const procs = join('/sys/fs/cgroup/pids', this.cgroupRoot, 'node', 'cgroup.procs');
    return ['nsenter', ['-t', String(this.pid), '-m', '-u', '-n', '--', 'env', `PATH=/usr/local/bin:${process.env.PATH}`, 'HOME=/root', 'CRI_CONFIG_FILE=/etc/kubernetes/crictl.yaml',
      'sh', '-c', `echo $$ > ${procs} && exec "$@"`, 'sh', ...args]];
  }

  run(args: string[], opts: { input?: string; timeoutMs?: number } = {}): { status: number | null; stdout: string; output: string } {
    const [cmd, a] = this.argv(args);
    const r = spawnSync(cmd, a, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 120_000 });
    return { status: r.status, stdout: r.stdout ?? '', output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  }

  /** A command line through sh inside the node (what cloud-init runs). */
  sh(line: string, timeoutMs?: number) {
    return this.run(['sh', '-c', line], { timeoutMs });
  }

  private start(service: string, args: string[]): Started {
    const [cmd, a] = this.argv(args);
    const p = startProcess(`${this.opts.name}-${service}`, cmd, a);
    this.services.set(service, p);
    return p;
  }

  log(service: string): string {
    const p = this.services.get(service);
    return p && existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8') : '';
  }

  /** (Re)starts containerd, as `systemctl restart containerd` would, and waits for its CRI. */
  async startContainerd(): Promise<void> {
    await this.services.get('containerd')?.stop(10_000);
    const p = this.start('containerd', ['containerd', '--log-level', 'debug']);
    await waitFor(`containerd on ${this.opts.name}`, async () => {
      if (p.proc.exitCode !== null) throw new StopWaiting(`containerd exited ${p.proc.exitCode}`);
      return this.run(['crictl', 'info'], { timeoutMs: 10_000 }).status === 0 ? true : undefined;
    }, 60_000, p.logFile);
  }

  /** Imports pre-loaded images into the CRI's namespace, as a node image build does. */
  importImages(images: NodeImage[]): void {
    for (const image of images) {
      const r = this.run(['ctr', '--address', '/run/containerd/containerd.sock', '-n', 'k8s.io', 'images', 'import', image.archive]);
      if (r.status !== 0) throw new Error(`import ${image.name} on ${this.opts.name}: ${r.output}`);
    }
  }

  /**
   * The kubelet, with the kubeconfig at /etc/kubernetes/kubelet.conf (and the cluster CA at
   * /etc/kubernetes/pki/ca.crt), as kubeadm leaves a joined node; kube-proxy beside it.
   */
  startKubelet(opts: { labels?: Record<string, string>; taints?: string[] } = {}): void {
    const c = components();
    writeFileSync(join(this.dir, 'var-lib-kubelet', 'config.yaml'), JSON.stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration',
      cgroupDriver: 'cgroupfs', cgroupRoot: this.cgroupRoot, failCgroupV1: false, failSwapOn: false,
      containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock',
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: '/etc/kubernetes/pki/ca.crt' } },
      authorization: { mode: 'Webhook' },
      clusterDNS: [this.opts.dnsIp], clusterDomain: CLUSTER_DNS, resolvConf: '/etc/resolv.conf',
      readOnlyPort: 0, healthzBindAddress: '127.0.0.1', rotateCertificates: false,
      // The machine's disk is shared with everything else: only a nearly full one evicts.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
      imageGCHighThresholdPercent: 99, imageGCLowThresholdPercent: 98,
      registerWithTaints: (opts.taints ?? []).map((t) => { const [kv, effect] = t.split(':'); const [key, value] = kv!.split('='); return { key, ...(value ? { value } : {}), effect }; }),
    }, null, 2));
    copyFileSync(c.nodeKube.kubelet, join(this.dir, 'bin', 'kubelet'));
    copyFileSync(c.nodeKube.kubeProxy, join(this.dir, 'bin', 'kube-proxy'));
    chmodSync(join(this.dir, 'bin', 'kubelet'), 0o755);
    chmodSync(join(this.dir, 'bin', 'kube-proxy'), 0o755);
    const labels = Object.entries(opts.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    this.start('kubelet', ['kubelet', '--config=/var/lib/kubelet/config.yaml', '--kubeconfig=/etc/kubernetes/kubelet.conf', `--node-ip=${this.opts.ip}`,
      ...(labels ? [`--node-labels=${labels}`] : []), '--v=2']);
    writeFileSync(join(this.dir, 'etc-kubernetes', 'kube-proxy.yaml'), JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1', kind: 'KubeProxyConfiguration', mode: 'iptables',
      clientConnection: { kubeconfig: '/etc/kubernetes/proxy.conf' }, clusterCIDR: this.opts.clusterCidr,
      // The conntrack table is the machine's: leave its size and timeouts alone.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      hostnameOverride: this.opts.name,
    }, null, 2));
    this.start('kube-proxy', ['kube-proxy', '--config=/etc/kubernetes/kube-proxy.yaml', '--v=2']);
  }

  running(service: string): boolean {
    const p = this.services.get(service);
    return !!p && p.proc.exitCode === null;
  }

  /**
   * Stops everything on the node: kubelet and kube-proxy first, then every pod through the CRI, then
   * containerd, then whatever process is still in the node's mount namespace (shims, containers), the
   * namespaces, and the kubelet's cgroups.
   */
  async stop(): Promise<void> {
    for (const s of ['kubelet', 'kube-proxy']) await this.services.get(s)?.stop(10_000);
    if (this.pid && this.running('containerd')) {
      this.run(['sh', '-c', 'crictl stopp $(crictl pods -q) >/dev/null 2>&1; crictl rmp -fa >/dev/null 2>&1'], { timeoutMs: 60_000 });
    }
    await this.services.get('containerd')?.stop(10_000);
    this.forceStop();
    await this.holder?.stop(2_000);
    this.services.clear();
  }

  /**
   * Synchronous, for a test process that exits without its teardown: kills every process in the node's
   * cgroups (containers) and mount namespace (containerd, its shims, the kubelet), then removes the cgroups.
   */
  forceStop(): void {
    killCgroupProcesses(this.cgroupRoot);
    if (this.pid) {
      const mnt = (pid: string) => { try { return readlinkSync(`/proc/${pid}/ns/mnt`); } catch { return undefined; } };
      const own = mnt(String(this.pid));
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        if (own && mnt(pid) === own) spawnSync('kill', ['-9', pid]);
      }
    }
    removeCgroups(this.cgroupRoot);
    live.delete(this);
  }
}

const live = new Set<KubeNode>();
process.once('exit', () => { for (const node of live) node.forceStop(); });

/** SIGKILL to every process in the cgroup tree `root` (the pids controller holds every task). */
function killCgroupProcesses(root: string): void {
  const top = join('/sys/fs/cgroup/pids', root);
  if (!existsSync(top)) return;
  const pids: string[] = [];
  const walk = (d: string) => {
    pids.push(...readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean));
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  try { walk(top); } catch { /* gone meanwhile */ }
  for (const pid of pids) spawnSync('kill', ['-9', pid]);
}

/** The kubelet refuses a cgroup root that does not exist: made under every v1 controller (cpuset filled from its parent, or nothing could join it). */
function makeCgroups(root: string): void {
  const base = '/sys/fs/cgroup';
  for (const controller of readdirSync(base).filter((c) => c !== 'unified' && existsSync(join(base, c, 'cgroup.procs')))) {
    const dir = join(base, controller, root);
    mkdirSync(dir, { recursive: true });
    if (controller === 'cpuset') for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(base, controller, f), 'utf8'));
  }
}

/** rmdir, deepest first, of `root` under every cgroup v1 controller (empty once their processes are gone). */
function removeCgroups(root: string): void {
  const base = '/sys/fs/cgroup';
  for (const controller of readdirSync(base)) {
    const top = join(base, controller, root);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => { dirs.push(d); for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name)); };
    try { walk(top); } catch { continue; }
    for (const d of dirs.reverse()) { try { rmdirSync(d); } catch { /* a process still in it: left for the machine */ } }
  }
}
