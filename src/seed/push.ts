// The OCI distribution calls `seed` makes, over the tunnel: TLS to the registry with the Cluster's CA
// (the issuer: a partial chain is the trust anchor, as on the nodes) and the writer's own name, Basic
// auth inside the tunnel. Every Location the registry answers is used for its path and query only: the
// connection always goes to the tunnel.
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { ImageLayout } from './archive.ts';
import type { ImagePlan } from './plan.ts';

export interface RegistryTarget {
  /** The local end of the tunnel. */
  port: number;
  ca: string;
  /** A DNS name of the registry's certificate (the writer pod's). */
  servername: string;
  /** `Basic …`, or undefined when the registry runs without auth. */
  authorization?: string;
}

export class PushError extends Error {}

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

export class RegistryClient {
  private readonly agent: https.Agent;
  constructor(private readonly target: RegistryTarget) {
    // allowPartialTrustChain: the issuer alone anchors the chain (Node and Bun need it; Deno's TLS does so anyway).
    // No keep-alive: Deno 2.9.6 never answers a second request on a kept-alive connection after a streamed
    // request body (reproduced without the tunnel, plain node:https). A connection per request costs one
    // WebSocket and one TLS handshake; blobs stream as before.
    this.agent = new https.Agent({ keepAlive: false, ca: target.ca, servername: target.servername, allowPartialTrustChain: true } as https.AgentOptions);
  }

  private request(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | Readable): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: this.target.port, method, path, agent: this.agent, servername: this.target.servername,
        headers: { ...headers, ...(this.target.authorization ? { authorization: this.target.authorization } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          // Error bodies are short; keep at most 64 KiB of any answer.
          if (kept < 65536) chunks.push(c);
          kept += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(300_000, () => req.destroy(new PushError(`${method} ${path}: no answer for 5 minutes`)));
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (err) => req.destroy(err));
        body.pipe(req);
      }
    });
  }

  private fail(what: string, r: Reply): never {
    const code = /"code":"([A-Z_]+)"/.exec(r.body)?.[1];
    const hint = r.status === 401 ? ': the push credential was refused (Secret <cluster>-registry-addon-push)' : '';
    throw new PushError(`${what}: HTTP ${r.status}${code ? ` ${code}` : ''}${hint}`);
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const r = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`);
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    return this.fail(`HEAD blob ${digest}`, r);
  }

  async pushBlob(repository: string, digest: string, size: number, body: Readable): Promise<void> {
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`, { 'content-length': '0' });
    if (start.status !== 202) this.fail(`start upload to ${repository}`, start);
    const location = new URL(String(start.headers.location ?? ''), 'https://tunnel');
    location.searchParams.set('digest', digest);
    const put = await this.request('PUT', `${location.pathname}${location.search}`, { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body);
    if (put.status !== 201) this.fail(`upload ${digest}`, put);
  }

  async hasManifest(repository: string, reference: string, mediaType: string): Promise<string | undefined> {
    const r = await this.request('HEAD', `/v2/${repository}/manifests/${reference}`, { accept: mediaType });
    if (r.status === 200) return String(r.headers['docker-content-digest'] ?? '');
    if (r.status === 404) return undefined;
    return this.fail(`HEAD manifest ${repository}:${reference}`, r);
  }

  async putManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
    const r = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, { 'content-type': mediaType, 'content-length': String(bytes.length) }, bytes);
    if (r.status !== 201) this.fail(`PUT manifest ${repository}:${reference}`, r);
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface ImageOutcome {
  pushedBlobs: number;
  presentBlobs: number;
  pushedBytes: number;
  manifests: number;
  /** The tag already named this digest: nothing written at all. */
  unchanged: boolean;
}

/**
 * One image: blobs the registry lacks (HEAD first: a second run, or one resumed after a failure, sends
 * only what is missing), then child manifests by digest, then the top manifest under its tag.
 */
export async function pushImage(client: RegistryClient, layout: ImageLayout, plan: ImagePlan, onBlob?: (bytes: number) => void): Promise<ImageOutcome> {
  const out: ImageOutcome = { pushedBlobs: 0, presentBlobs: 0, pushedBytes: 0, manifests: 0, unchanged: false };
  const topType = plan.top.mediaType ?? 'application/vnd.oci.image.index.v1+json';
  if (plan.tag && (await client.hasManifest(plan.repository, plan.tag, topType)) === plan.top.digest) return { ...out, unchanged: true };
  for (const blob of plan.blobs) {
    if (await client.hasBlob(plan.repository, blob.digest)) {
      out.presentBlobs++;
      continue;
    }
    await client.pushBlob(plan.repository, blob.digest, blob.size, layout.read(blob.digest));
    out.pushedBlobs++;
    out.pushedBytes += blob.size;
    onBlob?.(blob.size);
  }
  for (const m of [...plan.children, plan.top]) {
    const bytes = await layout.bytes(m.digest);
    const type = m.mediaType ?? JSON.parse(bytes.toString('utf8')).mediaType;
    const reference = m === plan.top && plan.tag ? plan.tag : m.digest;
    await client.putManifest(plan.repository, reference, type, bytes);
    out.manifests++;
  }
  return out;
}
