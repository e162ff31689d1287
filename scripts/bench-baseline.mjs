// Baseline for `npm run bench`: the leanest HTTPS server each runtime offers, reading the request body
// and answering a constant JSON body. Our server's numbers are reported as ratios against it.
// Usage: <runtime> scripts/bench-baseline.mjs PORT CERT KEY
import { readFileSync } from 'node:fs';
import https from 'node:https';

const [port, certFile, keyFile] = process.argv.slice(2);
const cert = readFileSync(certFile, 'utf8');
const key = readFileSync(keyFile, 'utf8');
const body = '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"DiscoveryResponse","status":"Success"}';
if (typeof globalThis.Bun === 'object') {
  globalThis.Bun.serve({
    hostname: '127.0.0.1',
    port: Number(port),
    tls: { cert, key },
    fetch: async (req) => {
      await req.arrayBuffer();
      return new Response(body, { headers: { 'content-type': 'application/json' } });
    },
  });
} else {
  https
    .createServer({ cert, key }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body));
    })
    .listen(Number(port), '127.0.0.1');
}
