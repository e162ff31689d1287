// Integration harness: starts the built bundle on a real runtime over real TLS, with certificates made
// by the real openssl, and talks to it like CAPI does (POST, no Content-Type, ?timeout=).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = process.cwd();
export const BUNDLE = join(ROOT, 'dist', 'capi-registry-addon.mjs');
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
export const RUNTIMES: Record<string, string[]> = {
  node: [bin('node')],
  deno: [bin('deno'), 'run', '--allow-all', '--quiet'],
  bun: [bin('bun')],
};

/** One temp folder for the whole run; removed by cleanup(). */
export const WORK = mkdtempSync(join(tmpdir(), 'capi-registry-addon-test-'));
const started = new Set<ChildProcess>();
export function cleanup(): void {
  for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(WORK, { recursive: true, force: true });
}

export function openssl(args: string[], cwd = WORK): string {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is not installed (${r.error.message}): the integration tests need it`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export interface Pki { caFile: string; ca: string; certFile: string; keyFile: string }

/** A CA and a server certificate for 127.0.0.1/localhost, made by openssl. */
export function makePki(name: string, keyType: 'ec' | 'rsa' = 'ec'): Pki {
  const dir = join(WORK, name);
  spawnSync('mkdir', ['-p', dir]);
  const keyArgs = keyType === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  openssl(['req', '-x509', ...keyArgs, '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}-ca`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', ...keyArgs, '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${name}`], dir);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  openssl(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf'], dir);
  const ca = openssl(['x509', '-in', 'ca.crt'], dir);
  return { caFile: join(dir, 'ca.crt'), ca, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Reply { status: number; text: string; json(): any }

export class Extension {
  logs = '';
  readonly agent: https.Agent;
  constructor(readonly runtime: string, readonly port: number, readonly proc: ChildProcess, ca: string | undefined) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca, rejectUnauthorized: ca !== undefined });
    proc.stdout?.on('data', (d) => (this.logs += d));
    proc.stderr?.on('data', (d) => (this.logs += d));
  }

  request(method: string, path: string, body?: string | Uint8Array, agent: https.Agent | false = this.agent): Promise<Reply> {
    return new Promise((resolve, reject) => {
      // Like CAPI's Go client: no Content-Type header; Content-Length only.
      const req = https.request(
        { host: '127.0.0.1', port: this.port, method, path, agent, ...(agent === false ? { rejectUnauthorized: false } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.end(body);
    });
  }

  post(path: string, body: string | Uint8Array, query = '?timeout=10s'): Promise<Reply> {
    return this.request('POST', path + query, body);
  }

  /** SIGTERM, and resolve with the exit code. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.agent.destroy();
    if (this.proc.exitCode !== null) return Promise.resolve(this.proc.exitCode);
    return new Promise((resolve) => {
      this.proc.once('exit', (code) => resolve(code));
      this.proc.kill(signal);
    });
  }
}

/** Starts the bundle on `runtime` and waits until it answers /healthz over TLS. */
export async function startExtension(runtime: string, opts: { pki?: Pki; args?: string[]; env?: Record<string, string> } = {}): Promise<Extension> {
  const port = await freePort();
  const cmd = RUNTIMES[runtime]!;
  const tlsArgs = opts.pki ? ['--tls-cert-file', opts.pki.certFile, '--tls-key-file', opts.pki.keyFile] : [];
  const proc = spawn(cmd[0]!, [...cmd.slice(1), BUNDLE, 'serve', '--listen', `127.0.0.1:${port}`, ...tlsArgs, ...(opts.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', HOME: join(WORK, 'no-home'), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(proc);
  const ext = new Extension(runtime, port, proc, opts.pki?.ca);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${runtime} extension exited with ${proc.exitCode}: ${ext.logs}`);
    try {
      const r = await ext.request('GET', '/healthz', undefined, opts.pki ? ext.agent : false);
      if (r.status === 200) return ext;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${runtime} extension did not become healthy: ${ext.logs}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
