// CAPI's kubeadm bootstrap provider (CABPK, of the core manager's release) renders a Machine's
// cloud-init from its KubeadmConfig, resolving `contentFrom` itself; `runCloudConfig` then does on a node
// what cloud-init does with it: write_files, then runcmd, except that where kubeadm would init or join
// the test's own join starts the kubelet with a kubeconfig (no kubeadm here: the control plane is the
// test's processes, not static Pods).
import { dirname } from 'node:path';
import * as yaml from 'js-yaml';
import { freePort, startProcess, StopWaiting, waitFor, type Started } from './base.ts';
import { ok } from './capi.ts';
import { components } from './components.ts';
import { makePki } from './extension.ts';
import type { KubeApi } from './kube.ts';
import type { KubeNode } from './kube-node.ts';


export async function startCabpk(management: KubeApi): Promise<Started> {
  const pki = makePki('cabpk-webhook');
  return startProcess('cabpk', components().capiKubeadmBootstrap.path, [
    `--kubeconfig=${management.kubeconfig}`, '--leader-elect=false', `--webhook-port=${await freePort()}`, `--webhook-cert-dir=${dirname(pki.certFile)}`,
    `--health-addr=127.0.0.1:${await freePort()}`, `--diagnostics-address=127.0.0.1:${await freePort()}`, '--insecure-diagnostics', '--v=2',
  ], { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' } });
}

/**
 * A Machine and its KubeadmConfig (`spec`, owned by the Machine as a MachineSet or the control plane
 * provider makes them), as CAPI's controllers create them; resolves with the cloud-config CABPK rendered.
 */
export async function renderedBootstrap(mgmt: KubeApi, cabpk: Started, opts: { namespace: string; cluster: string; name: string; version: string; spec: unknown; controlPlane: boolean }): Promise<string> {
  const { namespace, cluster, name } = opts;
  const base = `/apis/cluster.x-k8s.io/v1beta2/namespaces/${namespace}/machines`;
  const machine = ok(await mgmt.request('POST', base, {
    apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Machine',
    metadata: { name, labels: { 'cluster.x-k8s.io/cluster-name': cluster, ...(opts.controlPlane ? { 'cluster.x-k8s.io/control-plane': '' } : {}) } },
    spec: { clusterName: cluster, version: opts.version,
      bootstrap: { configRef: { apiGroup: 'bootstrap.cluster.x-k8s.io', kind: 'KubeadmConfig', name } },
      infrastructureRef: { apiGroup: 'infrastructure.cluster.x-k8s.io', kind: 'GenericInfrastructureMachine', name } },
  }), `Machine ${name}`).body;
  const configs = `/apis/bootstrap.cluster.x-k8s.io/v1beta2/namespaces/${namespace}/kubeadmconfigs`;
  ok(await mgmt.request('POST', configs, {
    apiVersion: 'bootstrap.cluster.x-k8s.io/v1beta2', kind: 'KubeadmConfig',
    metadata: { name, labels: { 'cluster.x-k8s.io/cluster-name': cluster },
      ownerReferences: [{ apiVersion: 'cluster.x-k8s.io/v1beta2', kind: 'Machine', name, uid: machine.metadata.uid, controller: true, blockOwnerDeletion: true }] },
    spec: opts.spec,
  }), `KubeadmConfig ${name}`);
  const secret = await waitFor(`CABPK's bootstrap data for ${name}`, async () => {
    if (cabpk.proc.exitCode !== null) throw new StopWaiting(`CABPK exited ${cabpk.proc.exitCode}`);
    const config = (await mgmt.request('GET', `${configs}/${name}`)).body;
    return config?.status?.dataSecretName;
  }, 120_000, cabpk.logFile);
  const data = (await mgmt.request('GET', `/api/v1/namespaces/${namespace}/secrets/${secret}`)).body.data;
  return Buffer.from(data.value, 'base64').toString('utf8');
}

interface CloudConfig {
  write_files?: { path: string; content?: string; permissions?: string; owner?: string; encoding?: string; append?: boolean }[];
  runcmd?: (string | string[])[];
}

/** The kubeadm step of a rendered runcmd (`kubeadm init|join ... && echo success > ...`). */
export const isKubeadmStep = (command: string) => /(^|\s)kubeadm (init|join)\b/.test(command);

/**
 * cloud-init on `node`: write_files, then each runcmd entry in order; `kubeadm` is the test's join.
 * Returns what each command printed, in order, with the commands.
 */
export async function runCloudConfig(node: KubeNode, cloudConfig: string, kubeadm: () => Promise<void>): Promise<{ command: string; output: string }[]> {
  const config = yaml.load(cloudConfig) as CloudConfig;
  for (const file of config.write_files ?? []) {
    if (file.encoding && file.encoding !== 'text/plain') throw new Error(`${file.path}: encoding ${file.encoding} not handled`);
    const r = node.run(['sh', '-c', `mkdir -p "$(dirname "$1")" && cat ${file.append ? '>>' : '>'} "$1" && chmod ${file.permissions ?? '0644'} "$1"`, 'write', file.path], { input: file.content ?? '' });
    if (r.status !== 0) throw new Error(`write_files ${file.path}: ${r.output}`);
  }
  const said: { command: string; output: string }[] = [];
  for (const entry of config.runcmd ?? []) {
    const command = Array.isArray(entry) ? entry.join(' ') : entry;
    if (isKubeadmStep(command)) {
      await kubeadm();
      // What follows kubeadm on its line (CABPK's success sentinel) still runs.
      const rest = command.split(' && ').slice(1).join(' && ');
      const r = rest ? node.sh(rest) : { status: 0, output: '' };
      if (r.status !== 0) throw new Error(`runcmd ${rest}: exit ${r.status}: ${r.output}`);
      said.push({ command, output: '(kubeadm: the test joined the node, a kubelet with a kubeconfig)' });
      continue;
    }
    const r = node.sh(command);
    if (r.status !== 0) throw new Error(`runcmd ${command}: exit ${r.status}: ${r.output}`);
    said.push({ command, output: r.output });
  }
  return said;
}
