// The extension under test: the built bundle started on a real runtime over real TLS, talked to the
// way CAPI does (POST, no Content-Type, ?timeout=).
import type { ChildProcess } from 'node:child_process';
import https from 'node:https';
import { join } from 'node:path';
import { ROOT, StopWaiting, WORK, freePort, startProcess, waitFor } from './base.ts';
import { makeCa, makeLeaf } from './pki.ts';
import RUNTIME_FLAGS from '../../../src/server/runtime-flags.json' with { type: 'json' };

export const BUNDLE = join(ROOT, 'dist', 'capi-registry-addon.mjs');
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
/** Each runtime with the flags the image runs the extension with (runtime-flags.json). */
export const RUNTIMES: Record<string, string[]> = {
  node: [bin('node'), ...RUNTIME_FLAGS.node],
  deno: [bin('deno'), 'run', '--allow-all', '--quiet', ...RUNTIME_FLAGS.deno],
  bun: [bin('bun'), ...RUNTIME_FLAGS.bun],
};

export interface Pki { caFile: string; ca: string; certFile: string; keyFile: string }

/** A CA and a serving certificate for 127.0.0.1/localhost, made by openssl. */
export function makePki(name: string, keyType: 'ec' | 'rsa' = 'ec'): Pki {
  const ca = makeCa(name, keyType);
  const leaf = makeLeaf(ca, 'tls', { sans: ['DNS:localhost', 'IP:127.0.0.1'], subject: `/CN=${name}`, type: keyType });
  return { caFile: ca.certFile, ca: ca.pem, certFile: leaf.certFile, keyFile: leaf.keyFile };
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
export async function startExtension(runtime: string, opts: { pki?: Pki; args?: string[]; env?: Record<string, string>; port?: number } = {}): Promise<Extension> {
  const port = opts.port ?? (await freePort());
  const cmd = RUNTIMES[runtime]!;
  const tlsArgs = opts.pki ? ['--tls-cert-file', opts.pki.certFile, '--tls-key-file', opts.pki.keyFile] : [];
  const { proc } = startProcess(`extension-${runtime}-${port}`, cmd[0]!, [...cmd.slice(1), BUNDLE, 'serve', '--listen', `127.0.0.1:${port}`, ...tlsArgs, ...(opts.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', HOME: join(WORK, 'no-home'), ...opts.env },
    pipe: true,
  });
  const ext = new Extension(runtime, port, proc, opts.pki?.ca);
  await waitFor(`${runtime} extension /healthz`, async () => {
    if (proc.exitCode !== null) throw new StopWaiting(`${runtime} extension exited with ${proc.exitCode}: ${ext.logs}`);
    const r = await ext.request('GET', '/healthz', undefined, opts.pki ? ext.agent : false);
    return r.status === 200 ? true : undefined;
  }, 60_000);
  return ext;
}
