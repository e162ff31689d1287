// A workload cluster with real nodes: kube-apiserver, kube-controller-manager and kube-scheduler of the
// newest Kubernetes served, CoreDNS answering cluster.local (the headless names the sync sidecar uses),
// a real volume provisioner (rancher's local-path provisioner, local volumes: the kubelet applies
// fsGroup), and KubeNodes on one bridge (10.250.0.0/24; the test process is 10.250.0.1, where the API
// server and CoreDNS listen). Each node's pods get 10.244.<n>.0/24; nodes route to each other's pods.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startProcess, StopWaiting, waitFor, workDir } from './base.ts';
import { ok } from './capi.ts';
import { components } from './components.ts';
import { startKube, type KubeApi } from './kube.ts';
import { KubeNode, CLUSTER_DNS } from './kube-node.ts';
import { makeLeaf } from './pki.ts';
import { PodNetwork } from './pod-network.ts';
import { BUSYBOX_IMAGE, infrastructureImages, type NodeImage } from './node-images.ts';

export const NODE_SUBNET = '10.250.0';
/** The test process on the nodes' bridge: the API server and CoreDNS listen here. */
export const NODE_HOST = `${NODE_SUBNET}.1`;
const HOST_IP = NODE_HOST;
export const SERVICE_CIDR = '10.96.0.0/12';
const DNS_IP = '10.96.0.10';
const CLUSTER_CIDR = '10.244.0.0/16';
export const STORAGE_CLASS = 'local-path';

export interface NodeSpec {
  name: string;
  containerd: { version: string; path: string };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

export class NodeCluster {
  readonly nodes: KubeNode[] = [];
  readonly images: NodeImage[];
  private network?: PodNetwork;
  api?: KubeApi;
  constructor() {
    this.images = infrastructureImages();
  }

  /** The admin kubeconfig with the address nodes use (the Cluster's controlPlaneEndpoint), as CAPI writes `<cluster>-kubeconfig`. */
  adminKubeconfig(): string {
    const config = JSON.parse(readFileSync(this.api!.kubeconfig, 'utf8'));
    config.clusters[0].cluster.server = `https://${HOST_IP}:${this.api!.port}`;
    return JSON.stringify(config, null, 2);
  }

  /** A kubeconfig for `user` (client certificate of this cluster's CA) that reaches the API server from a node. */
  kubeconfig(user: string, groups: string[] = []): string {
    const api = this.api!;
    const leaf = makeLeaf(api.ca, user.replace(/[^a-z0-9-]/gi, '-'), { client: true, subject: `${groups.map((g) => `/O=${g}`).join('')}/CN=${user}` });
    return JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
      clusters: [{ name: 'c', cluster: { server: `https://${HOST_IP}:${api.port}`, 'certificate-authority-data': b64(api.ca.pem) } }],
      users: [{ name: 'u', user: { 'client-certificate-data': b64(leaf.cert), 'client-key-data': b64(leaf.key) } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
    }, null, 2);
  }

  async start(): Promise<KubeApi> {
    const c = components();
    this.network = new PodNetwork('kl', NODE_SUBNET);
    const api = await startKube('nodes', { serviceCidr: SERVICE_CIDR, nodeAuthorization: true, apiserver: c.nodeKube.kubeApiserver, advertiseAddress: HOST_IP });
    this.api = api;
    api.startControllerManager(c.nodeKube.kubeControllerManager);
    api.adopt(startProcess('nodes-kube-scheduler', c.nodeKube.kubeScheduler, [
      `--kubeconfig=${api.kubeconfig}`, '--leader-elect=false', '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`, '--v=2',
    ]));
    await this.startDns(api);
    await this.startProvisioner(api);
    return api;
  }

  /** CoreDNS on the test's address, behind the kube-dns Service (an EndpointSlice kube-proxy follows). */
  private async startDns(api: KubeApi): Promise<void> {
    const dir = workDir('coredns');
    writeFileSync(join(dir, 'Corefile'), `.:53 {\n  bind ${HOST_IP}\n  errors\n  kubernetes ${CLUSTER_DNS} in-addr.arpa ip6.arpa {\n    kubeconfig ${api.kubeconfig} nodes\n    pods insecure\n    fallthrough in-addr.arpa ip6.arpa\n  }\n}\n`);
    const dns = api.adopt(startProcess('nodes-coredns', components().coredns.path, ['-conf', join(dir, 'Corefile')]));
    ok(await api.request('POST', '/api/v1/namespaces/kube-system/services', {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', labels: { 'k8s-app': 'kube-dns' } },
      spec: { clusterIP: DNS_IP, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] },
    }), 'kube-dns Service');
    ok(await api.request('POST', '/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'kube-dns-coredns', labels: { 'kubernetes.io/service-name': 'kube-dns' } },
      addressType: 'IPv4', endpoints: [{ addresses: [HOST_IP], conditions: { ready: true } }],
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }],
    }), 'kube-dns EndpointSlice');
    await waitFor('CoreDNS serving', async () => {
      if (dns.proc.exitCode !== null) throw new StopWaiting(`CoreDNS exited ${dns.proc.exitCode}`);
      return /CoreDNS-/.test(readFileSync(dns.logFile, 'utf8')) ? true : undefined;
    }, 30_000, dns.logFile);
  }

  /** rancher's local-path provisioner: a helper pod makes each volume's folder on the chosen node; local volumes. */
  private async startProvisioner(api: KubeApi): Promise<void> {
    const dir = workDir('local-path');
    const ns = 'local-path-storage';
    ok(await api.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), 'namespace');
    const config = JSON.stringify({ nodePathMap: [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: ['/opt/local-path-provisioner'] }] });
    const helperPod = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: helper-pod\nspec:\n  containers:\n  - name: helper-pod\n    image: ${BUSYBOX_IMAGE}\n    imagePullPolicy: Never\n`;
    const data = { 'config.json': config, setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n', teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n', 'helperPod.yaml': helperPod };
    ok(await api.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'local-path-config' }, data }), 'provisioner ConfigMap');
    for (const [k, v] of Object.entries(data)) writeFileSync(join(dir, k), v);
    ok(await api.request('POST', '/apis/storage.k8s.io/v1/storageclasses', {
      apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true', defaultVolumeType: 'local' } },
      provisioner: 'rancher.io/local-path', reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer',
    }), 'StorageClass');
    api.adopt(startProcess('nodes-local-path-provisioner', components().localPathProvisioner.path, [
      '--debug', 'start', '--kubeconfig', api.kubeconfig, '--config', join(dir, 'config.json'), '--helper-pod-file', join(dir, 'helperPod.yaml'),
      '--namespace', ns, '--configmap-name', 'local-path-config', '--provisioner-name', 'rancher.io/local-path', '--service-account-name', 'default',
      '--helper-image', BUSYBOX_IMAGE,
    ], { env: { ...process.env, POD_NAMESPACE: ns } }));
  }

  /** Boots a node (namespaces, containerd with the pre-loaded images); it joins with `join`. */
  async addNode(spec: NodeSpec): Promise<KubeNode> {
    const index = this.nodes.length + 1;
    const ip = `${NODE_SUBNET}.${10 + index}`;
    const node = new KubeNode({ name: spec.name, netns: this.network!.join(spec.name, 10 + index), ip, podCidr: `10.244.${index}.0/24`, clusterCidr: CLUSTER_CIDR, dnsIp: DNS_IP, containerd: spec.containerd });
    this.nodes.push(node);
    await node.boot();
    await node.startContainerd();
    node.importImages(this.images);
    // Each node routes to the others' pods over the bridge (what a CNI's routes or an overlay give).
    for (const other of this.nodes.filter((n) => n !== node)) {
      node.sh(`ip route replace ${other.opts.podCidr} via ${other.opts.ip}`);
      other.sh(`ip route replace ${node.opts.podCidr} via ${ip}`);
    }
    return node;
  }

  /**
   * What `kubeadm join` leaves on a node, without kubeadm: /etc/kubernetes/kubelet.conf (the node's
   * client certificate), pki/ca.crt, kube-proxy's kubeconfig; then the kubelet and kube-proxy start and
   * the node registers. The control-plane node gets kubeadm's role label and taint.
   */
  async join(node: KubeNode, controlPlane = false): Promise<void> {
    const api = this.api!;
    const etc = join(node.dir, 'etc-kubernetes');
    workDir('kn', node.opts.name, 'etc-kubernetes', 'pki');
    writeFileSync(join(etc, 'pki', 'ca.crt'), api.ca.pem);
    writeFileSync(join(etc, 'kubelet.conf'), this.kubeconfig(`system:node:${node.opts.name}`, ['system:nodes']), { mode: 0o600 });
    writeFileSync(join(etc, 'proxy.conf'), this.kubeconfig('system:kube-proxy'), { mode: 0o600 });
    node.startKubelet(controlPlane ? { taints: ['node-role.kubernetes.io/control-plane:NoSchedule'] } : {});
    await waitFor(`Node ${node.opts.name} Ready`, async () => {
      if (!node.running('kubelet')) throw new StopWaiting(`the kubelet on ${node.opts.name} exited`);
      const n = await api.request('GET', `/api/v1/nodes/${node.opts.name}`);
      return n.body?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    }, 120_000, join(workDir('logs'), `${node.opts.name}-kubelet.log`));
    if (controlPlane) {
      ok(await api.request('PATCH', `/api/v1/nodes/${node.opts.name}`, JSON.stringify({ metadata: { labels: { 'node-role.kubernetes.io/control-plane': '' } } }), 'application/merge-patch+json'), 'control-plane label');
    }
  }

  async stop(): Promise<void> {
    for (const node of [...this.nodes].reverse()) await node.stop();
    await this.api?.stop();
    this.network?.remove();
  }
}

