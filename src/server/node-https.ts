// Adapter on `node:https`, used on Node and on Deno. Deno's own Deno.serve cannot swap a certificate
// on a listening socket (that needs the unstable reusePort), while its node:https supports
// setSecureContext, so both runtimes share this adapter.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Adapter, FetchHandler } from './adapter.ts';

/** The request body as a web stream; leaner than Readable.toWeb, which costs ~1 ms on a 100 KB body. */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      req.on('data', (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 1) <= 0) req.pause();
      });
      req.on('end', () => controller.close());
      req.on('error', (err) => controller.error(err));
    },
    pull() {
      req.resume();
    },
    cancel() {
      req.destroy();
    },
  }, { highWaterMark: 4 });
}

function toRequest(req: IncomingMessage, origin: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(origin + (req.url ?? '/'), {
    method,
    headers,
    ...(hasBody ? { body: bodyStream(req), duplex: 'half' } : {}),
  } as RequestInit);
}

async function writeResponse(response: Response, res: ServerResponse, method: string | undefined): Promise<void> {
  const body = new Uint8Array(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  // A HEAD answer keeps the length the handler declared for the body it would send.
  if (method !== 'HEAD' || headers['content-length'] === undefined) headers['content-length'] = String(body.byteLength);
  res.writeHead(response.status, headers);
  res.end(body);
}

function handle(fetch: FetchHandler, origin: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    Promise.resolve()
      .then(() => fetch(toRequest(req, origin)))
      .then((response) => writeResponse(response, res, req.method))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error');
      });
  };
}

export const serveNodeHttps: Adapter = async (opts) => {
  const origin = `https://${opts.hostname.includes(':') ? `[${opts.hostname}]` : opts.hostname}:${opts.port}`;
  const server = https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem, minVersion: 'TLSv1.2' }, handle(opts.fetch, origin));
  // Whoever reaches the port is not us: connections past the cap are closed as they arrive, a client
  // that trickles its headers or body is cut off (CAPI sends a hook request at once, 30 s at most).
  server.maxConnections = opts.maxConnections;
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    runtime: typeof (globalThis as { Deno?: unknown }).Deno === 'object' ? 'deno' : 'node',
    port: typeof address === 'object' && address ? address.port : opts.port,
    async reloadTls(tls) {
      // Throws on a malformed or mismatched pair, leaving the old context in place.
      server.setSecureContext({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' });
    },
    close(graceMs) {
      return new Promise((resolve) => {
        const force = setTimeout(() => server.closeAllConnections?.(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections?.();
      });
    },
  };
};
