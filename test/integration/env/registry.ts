// A real CNCF Distribution registry (v3, built from github.com/distribution/distribution/v3) serving
// TLS on loopback, and a minimal OCI distribution client to push and pull with.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { join } from 'node:path';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { POD } from '../../../src/render/metadata.ts';
import { components } from './components.ts';
import { freePort, inMountNamespace, startProcess, StopWaiting, waitFor, workDir, type Started } from './base.ts';
import { sha256, type OciImage } from './oci.ts';
import type { NetNs } from './node.ts';

export interface HttpReply { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

/** One HTTP(S) exchange; `ca` is the only trust for https URLs. */
export function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; ca?: string; tlsName?: string }): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    // tlsName: verify the certificate for this name instead of the URL's address (a pod reached by IP).
    const name = opts.tlsName;
    const identity = name ? { servername: name, checkServerIdentity: (_: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name, cert) } : {};
    const req = client.request(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, agent: false, ...identity }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export class Registry {
  constructor(readonly host: string, readonly ca: string | undefined, readonly dataDir: string, private process: Started, readonly tlsName?: string) {}
  get url() {
    return `${this.ca === undefined ? 'http' : 'https'}://${this.host}`;
  }
  get logFile() {
    return this.process.logFile;
  }

  async push(repo: string, tag: string, image: OciImage, auth?: string): Promise<string> {
    const headers: Record<string, string> = auth ? { authorization: auth } : {};
    for (const blob of [image.config, ...image.layers]) {
      const start = await httpRequest(`${this.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers, ca: this.ca, tlsName: this.tlsName });
      if (start.status !== 202) throw new Error(`upload start ${start.status}: ${start.body}`);
      const location = new URL(String(start.headers.location), this.url);
      location.searchParams.set('digest', blob.digest);
      const put = await httpRequest(location.toString(), { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: blob.bytes, ca: this.ca, tlsName: this.tlsName });
      if (put.status !== 201) throw new Error(`blob put ${put.status}: ${put.body}`);
    }
    const m = await httpRequest(`${this.url}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT', headers: { ...headers, 'content-type': image.manifest.mediaType }, body: image.manifest.bytes, ca: this.ca, tlsName: this.tlsName,
    });
    if (m.status !== 201) throw new Error(`manifest put ${m.status}: ${m.body}`);
    return String(m.headers['docker-content-digest']);
  }

  /** GET a manifest by tag or digest; returns its bytes and their digest. */
  async manifest(repo: string, ref: string, auth?: string): Promise<{ status: number; digest?: string; bytes: Buffer }> {
    const r = await httpRequest(`${this.url}/v2/${repo}/manifests/${ref}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json', ...(auth ? { authorization: auth } : {}) }, ca: this.ca, tlsName: this.tlsName,
    });
    return { status: r.status, bytes: r.body, ...(r.status === 200 ? { digest: sha256(r.body) } : {}) };
  }

  stop(): Promise<number | null> {
    return this.process.stop();
  }
}

/**
 * Starts Distribution with a config of ours, or with `config` (YAML text) given verbatim. Without
 * `tls` it serves plain HTTP (a loopback stand-in for a public upstream, which containerd reaches over
 * plain HTTP when the host is a loopback address).
 */
export async function startRegistry(name: string, tls: { certFile: string; keyFile: string; ca: string } | undefined, opts: { host?: string; port?: number; config?: (addr: string, dataDir: string) => string; wrap?: (cmd: string, args: string[]) => [string, string[]] } = {}): Promise<Registry> {
  const dir = workDir('registry', name);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort());
  const addr = `${host}:${port}`;
  const dataDir = join(dir, 'data');
  const config = opts.config?.(addr, dataDir) ?? [
    'version: 0.1',
    'log: {level: info, accesslog: {disabled: false}}',
    `storage: {filesystem: {rootdirectory: ${dataDir}}, delete: {enabled: true}}`,
    `http: {addr: "${addr}", secret: test-secret${tls ? `, tls: {certificate: ${tls.certFile}, key: ${tls.keyFile}}` : ''}}`,
  ].join('\n');
  writeFileSync(join(dir, 'config.yml'), config);
  const [cmd, args] = opts.wrap ? opts.wrap(components().registry.path, ['serve', join(dir, 'config.yml')]) : [components().registry.path, ['serve', join(dir, 'config.yml')]];
  const proc = startProcess(`registry-${name}`, cmd, args, {
    env: { PATH: process.env.PATH ?? '', OTEL_TRACES_EXPORTER: 'none' },
  });
  const registry = new Registry(addr, tls?.ca, dataDir, proc);
  // In a network namespace of the test's own the test cannot ask; the log says when it listens.
  if (opts.wrap) {
    await waitFor(`registry ${name} listening`, async () => (/listening on/.test(readFileSync(proc.logFile, 'utf8')) ? true : undefined), 60_000, proc.logFile);
    return registry;
  }
  try {
    await waitFor(`registry ${name} /v2/`, async () => {
      if (proc.proc.exitCode !== null) throw new StopWaiting(`registry exited with ${proc.proc.exitCode}`);
      const r = await httpRequest(`${registry.url}/v2/`, { ca: tls?.ca });
      return r.status === 200 || r.status === 401 ? true : undefined;
    }, 60_000, proc.logFile);
  } catch (err) {
    // A live child keeps the test process from ever exiting: a registry that never came up is stopped here.
    await proc.stop();
    throw err;
  }
  return registry;
}

/** `binary args` with the files of rendered registry `name` at the pod's paths (its config, TLS and volume), in its network namespace if given. */
export function inRenderedPod(name: string, binary: string, args: string[], netns?: NetNs): [string, string[]] {
  const root = workDir('rendered-registry', name);
  const [cmd, argv] = inMountNamespace([[join(root, 'etc'), '/etc'], [join(root, 'var-lib'), '/var/lib']], binary, args);
  return netns ? netns.wrap(cmd, argv) : [cmd, argv];
}

/**
 * Runs a Distribution binary with the rendered config.yml at its pod paths (mount namespace); `htpasswd`
 * as the auth Secret mounts it. `pod`: run in that pod's network namespace, listening as the pod does
 * (every address, the container port) while the test reaches it at `addr`.
 */
export async function startRenderedRegistry(name: string, binary: string, config: string, tls: { 'tls.crt': string; 'tls.key': string; 'ca.crt': string }, addr: string, tlsName?: string, htpasswd?: string, pod?: { netns: NetNs }): Promise<Registry> {
  const root = workDir('rendered-registry', name);
  const etc = join(root, 'etc');
  if (htpasswd !== undefined) {
    mkdirSync(join(etc, POD.authDir.replace('/etc/', '')), { recursive: true });
    writeFileSync(join(etc, POD.htpasswdFile.replace('/etc/', '')), htpasswd);
  }
  mkdirSync(join(etc, POD.configDir.replace('/etc/', '')), { recursive: true });
  mkdirSync(join(etc, POD.tlsDir.replace('/etc/', '')), { recursive: true });
  writeFileSync(join(etc, POD.configFile.replace('/etc/', '')), config);
  writeFileSync(join(etc, POD.tlsDir.replace('/etc/', ''), 'tls.crt'), tls['tls.crt']);
  writeFileSync(join(etc, POD.tlsDir.replace('/etc/', ''), 'tls.key'), tls['tls.key']);
  const varLib = join(root, 'var-lib');
  mkdirSync(join(varLib, 'registry'), { recursive: true });
  const [cmd, args] = inRenderedPod(name, binary, ['serve', POD.configFile], pod?.netns);
  // As in the pod: the shared HTTP secret from the env. Outside a pod's namespace the listen addresses
  // are overridden: the test's registries then share the machine's.
  const listen = pod ? {} : { REGISTRY_HTTP_ADDR: addr, REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${await freePort()}` };
  const proc = startProcess(`registry-${name}`, cmd, args, {
    env: { PATH: process.env.PATH ?? '', REGISTRY_HTTP_SECRET: 'shared-secret', ...listen, OTEL_TRACES_EXPORTER: 'none' },
  });
  const registry = new Registry(addr, tls['ca.crt'], join(varLib, 'registry'), proc, tlsName);
  // What the pod's probes ask: `/` answers 200 without credentials.
  await waitFor(`rendered registry ${name}`, async () => {
    if (proc.proc.exitCode !== null) throw new StopWaiting(`exited ${proc.proc.exitCode}`);
    return (await httpRequest(`${registry.url}/`, { ca: tls['ca.crt'], tlsName })).status === 200 ? true : undefined;
  }, 60_000, proc.logFile);
  return registry;
}

