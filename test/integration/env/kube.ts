// A real Kubernetes API: etcd plus kube-apiserver (built from k8s.io/kubernetes), on loopback, with
// its own CA, serving certificate, service-account keys, service CIDR and an admin kubeconfig.
import https from 'node:https';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { components } from './components.ts';
import { freePort, openssl, startProcess, StopWaiting, waitFor, workDir, type Started } from './base.ts';
import { makeCa, makeLeaf, type Ca, type Leaf } from './pki.ts';

export interface KubeReply { status: number; body: any; text: string }

export interface AuditEvent {
  verb: string;
  requestURI?: string;
  user: { username: string };
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
  stageTimestamp: string;
  responseStatus?: { code?: number };
}

/** Verbs that change something (a no-op server-side apply is still a `patch`). */
export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

export class KubeApi {
  private readonly agent: https.Agent;
  constructor(
    readonly name: string,
    readonly url: string,
    readonly ca: Ca,
    readonly admin: Leaf,
    readonly kubeconfig: string,
    readonly serviceCidr: string,
    private readonly processes: Started[],
    readonly auditLog: string,
    readonly port: number,
  ) {
    this.agent = new https.Agent({ keepAlive: true, ca: ca.pem, cert: admin.cert, key: admin.key });
  }

  /** A raw API call as the admin (system:masters). JSON in, JSON out; YAML with contentType. */
  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<KubeReply> {
    const u = new URL(this.url);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: u.hostname, port: u.port, method, path, agent: this.agent, headers: payload ? { 'content-type': contentType } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, text });
          });
        },
      );
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.end(payload);
    });
  }

  /**
   * Creates every CustomResourceDefinition in the YAML files of `dirs`, then waits until each is
   * Established. The files are the modules' own `config/crd/bases` (and cert-manager's deploy/crds):
   * they carry no conversion webhook (kustomize adds it at release time), so nothing is stripped, and
   * the API server converts between served versions with strategy None. Tests therefore create CAPI
   * objects only in the storage version (v1beta2).
   */
  async installCrds(dirs: string[]): Promise<string[]> {
    const names: string[] = [];
    for (const dir of dirs) {
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
        for (const doc of readFileSync(join(dir, file), 'utf8').split(/^---\s*$/m)) {
          if (!/kind:\s*CustomResourceDefinition/.test(doc)) continue;
          const r = await this.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', doc, 'application/yaml');
          if (r.status !== 201 && r.status !== 409) throw new Error(`CRD from ${file} rejected: ${r.status} ${r.text.slice(0, 300)}`);
          names.push(/^\s{2}name:\s*(\S+)/m.exec(doc)?.[1] ?? file);
        }
      }
    }
    for (const name of names) {
      await waitFor(`CRD ${name} Established`, async () => {
        const r = await this.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        return r.body?.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      }, 120_000);
    }
    return names;
  }

  /** The audit events so far (level Metadata: user, userAgent, verb, objectRef, stageTimestamp). */
  audit(): AuditEvent[] {
    if (!existsSync(this.auditLog)) return [];
    return readFileSync(this.auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent);
  }

  /** SIGSTOP/SIGCONT kube-apiserver: it keeps accepting connections but answers nothing, as a hung server does. */
  freeze(frozen: boolean): void {
    this.processes[1]!.proc.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /**
   * kube-controller-manager for this API server, as a cluster runs it: the StatefulSet, garbage
   * collector, PV binder (with the in-tree hostPath provisioner and deleter: a StorageClass with
   * provisioner kubernetes.io/host-path gets volumes under /tmp), PVC and PV protection controllers.
   */
  startControllerManager(binary = components().kubeControllerManager.path): Started {
    const kcm = startProcess(`${this.name}-kube-controller-manager`, binary, [
      `--kubeconfig=${this.kubeconfig}`, '--leader-elect=false', '--secure-port=0', '--enable-hostpath-provisioner',
      '--use-service-account-credentials=false', '--v=2',
    ]);
    this.processes.push(kcm);
    return kcm;
  }

  /** A process that lives and dies with this API server (the scheduler, CoreDNS...). */
  adopt(process: Started): Started {
    this.processes.push(process);
    return process;
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    this.freeze(false);
    for (const p of [...this.processes].reverse()) await p.stop();
  }
}

/** The first address of a service CIDR: the `kubernetes` Service's. */
const firstServiceIp = (cidr: string) => cidr.replace(/\.\d+\/\d+$/, '.1');

/** Starts etcd and kube-apiserver for one cluster; resolves when /readyz answers ok. */
let started = 0;

export interface KubeOptions {
  serviceCidr: string;
  /** The Node authorizer and NodeRestriction admission, as kubeadm clusters run them (kubelets may change only their own Node). */
  nodeAuthorization?: boolean;
  /** Another kube-apiserver binary (the real-node suite's Kubernetes version). */
  apiserver?: string;
  /** Nodes reach the API server here (also a SAN of its certificate; the `kubernetes` Service's endpoint); it then listens on every address. */
  advertiseAddress?: string;
}

export async function startKube(name: string, opts: KubeOptions): Promise<KubeApi> {
  const c = components();
  // A fresh folder (and so a fresh etcd) per start: suites must not see each other's objects.
  const dir = workDir('kube', `${name}-${++started}`);
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcd = startProcess(`${name}-etcd`, c.etcd.path, [
    '--name', name, '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdClient}`, '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster', `${name}=http://127.0.0.1:${etcdPeer}`, '--log-level', 'warn', '--quota-backend-bytes', String(512 * 1024 * 1024),
  ]);

  const ca = makeCa(`${name}-${started}-kube`); // per start: a leftover process must never see a later CA
  const advertise = opts.advertiseAddress ? [`IP:${opts.advertiseAddress}`, `IP:${firstServiceIp(opts.serviceCidr)}`] : [];
  const serving = makeLeaf(ca, 'apiserver', { sans: ['IP:127.0.0.1', 'DNS:localhost', 'DNS:kubernetes.default.svc', ...advertise] });
  const admin = makeLeaf(ca, 'admin', { client: true, subject: '/O=system:masters/CN=kubernetes-admin' });
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);

  // Every request in an audit log (written as it happens): tests count who wrote what.
  writeFileSync(join(dir, 'audit-policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n');
  const auditLog = join(dir, 'audit.log');
  const apiserver = startProcess(`${name}-kube-apiserver`, opts.apiserver ?? c.kubeApiserver.path, [
    `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-mode=blocking', '--audit-log-maxsize=0',
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    ...(opts.advertiseAddress
      // The API server reaches kubelets (logs, exec) as the admin: authorized by each kubelet's webhook.
      ? ['--bind-address=0.0.0.0', `--advertise-address=${opts.advertiseAddress}`, `--kubelet-client-certificate=${admin.certFile}`, `--kubelet-client-key=${admin.keyFile}`, '--kubelet-preferred-address-types=InternalIP']
      : ['--bind-address=127.0.0.1', '--advertise-address=127.0.0.1']),
    `--secure-port=${apiPort}`,
    `--tls-cert-file=${serving.certFile}`, `--tls-private-key-file=${serving.keyFile}`, `--client-ca-file=${ca.certFile}`,
    `--service-account-issuer=https://kubernetes.default.svc`, `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    `--service-cluster-ip-range=${opts.serviceCidr}`,
    opts.nodeAuthorization ? '--authorization-mode=Node,RBAC' : '--authorization-mode=RBAC',
    ...(opts.nodeAuthorization ? ['--enable-admission-plugins=NodeRestriction'] : []),
    '--enable-priority-and-fairness=false', `--cert-dir=${join(dir, 'certs')}`,
    '--v=1',
  ]);
  const url = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = join(dir, 'admin.kubeconfig');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': name,
    clusters: [{ name, cluster: { server: url, 'certificate-authority-data': b64(ca.pem) } }],
    users: [{ name: 'admin', user: { 'client-certificate-data': b64(admin.cert), 'client-key-data': b64(admin.key) } }],
    contexts: [{ name, context: { cluster: name, user: 'admin' } }],
  }, null, 2));
  const api = new KubeApi(name, url, ca, admin, kubeconfig, opts.serviceCidr, [etcd, apiserver], auditLog, apiPort);
  try {
    await waitFor(`${name} kube-apiserver /readyz`, async () => {
      if (apiserver.proc.exitCode !== null) throw new StopWaiting(`kube-apiserver exited with ${apiserver.proc.exitCode}`);
      const r = await api.request('GET', '/readyz');
      return r.status === 200 ? true : undefined;
    }, 180_000, apiserver.logFile);
  } catch (err) {
    await api.stop(); // an API server that never became ready takes its etcd with it
    throw err;
  }
  return api;
}
