// Pushes an OCI image (config, layers, manifest as files) to a registry over HTTPS with basic auth:
// what `docker push` does, run inside a node's network namespace so it goes through the Service IP
// kube-proxy made there. Plain JavaScript: `ip netns exec NS node push-oci.mjs` runs it unbundled.
//   node push-oci.mjs URL REPO TAG DIR CA_FILE USER:PASSWORD   (DIR: manifest.json, config, layer-0...)
import https from 'node:https';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

const [url, repo, tag, dir, caFile, credential] = process.argv.slice(2);
const ca = readFileSync(caFile, 'utf8');
const auth = `Basic ${Buffer.from(credential).toString('base64')}`;
const digest = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function request(target, method, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(target, { method, ca, agent: false, headers: { authorization: auth, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${target} timed out`)));
    req.end(body);
  });
}

for (const name of readdirSync(dir).filter((f) => f !== 'manifest.json').sort()) {
  const bytes = readFileSync(join(dir, name));
  const start = await request(`${url}/v2/${repo}/blobs/uploads/`, 'POST');
  if (start.status !== 202) throw new Error(`upload start: ${start.status} ${start.body}`);
  const location = new URL(String(start.headers.location), url);
  location.searchParams.set('digest', digest(bytes));
  const put = await request(location.toString(), 'PUT', bytes, { 'content-type': 'application/octet-stream' });
  if (put.status !== 201) throw new Error(`blob ${name}: ${put.status} ${put.body}`);
}
const manifest = readFileSync(join(dir, 'manifest.json'));
const m = await request(`${url}/v2/${repo}/manifests/${tag}`, 'PUT', manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
if (m.status !== 201) throw new Error(`manifest: ${m.status} ${m.body}`);
console.log(m.headers['docker-content-digest']);
