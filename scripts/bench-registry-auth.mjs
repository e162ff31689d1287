// The registry's CPU per pulled blob with htpasswd auth off (the baseline, same run) and on at bcrypt
// cost 4 (what the addon writes) and 10 (Go's default), measured on the real Distribution binary the
// tests build (scripts/components.sh). Distribution verifies the bcrypt hash on every request, so the
// cost is paid per blob. CPU = the registry process's utime+stime (/proc) across the pulls.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import bcryptjs from 'bcryptjs';
import { freePort } from './lib/ports.mjs';

const TICKS = 100; // USER_HZ on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14 and 15 of stat)
};

function request(agent, port, method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Returns rows { mode, blobs, cpuMsPerBlob, rps } or undefined when the registry binary is not built. */
export async function benchRegistryAuth({ work, certFile, keyFile, ca, blobs = 100, rounds = 10 }) {
  const manifest = join(homedir(), '.cache', 'capi-registry-addon', 'components.json');
  if (!existsSync(manifest)) return undefined;
  const registry = JSON.parse(readFileSync(manifest, 'utf8')).registry?.path;
  if (!registry || !existsSync(registry)) return undefined;
  const password = 'x'.repeat(43); // the length of our base64url 256-bit passwords
  const basic = `Basic ${Buffer.from(`node:${password}`).toString('base64')}`;
  const rows = [];
  for (const mode of ['auth off', 'auth on, bcrypt cost 4', 'auth on, bcrypt cost 10']) {
    const dir = join(work, `registry-${rows.length}`);
    mkdirSync(dir, { recursive: true });
    const cost = Number(/cost (\d+)/.exec(mode)?.[1] ?? 0);
    if (cost) writeFileSync(join(dir, 'htpasswd'), `node:${bcryptjs.hashSync(password, cost)}\n`);
    const port = await freePort();
    writeFileSync(join(dir, 'config.yml'), [
      'version: 0.1',
      'log: {level: error, accesslog: {disabled: true}}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, cache: {blobdescriptor: inmemory}}`,
      `http: {addr: "127.0.0.1:${port}", secret: bench, tls: {certificate: ${certFile}, key: ${keyFile}}}`,
      ...(cost ? [`auth: {htpasswd: {realm: bench, path: ${join(dir, 'htpasswd')}}}`] : []),
    ].join('\n'));
    const proc = spawn(registry, ['serve', join(dir, 'config.yml')], { stdio: 'ignore', env: { OTEL_TRACES_EXPORTER: 'none' } });
    const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 8 });
    const headers = cost ? { authorization: basic } : {};
    try {
      for (let i = 0; ; i++) {
        const r = await request(agent, port, 'GET', '/', {}).catch(() => undefined);
        if (r?.status === 200) break;
        if (i > 200) throw new Error(`registry (${mode}) did not start`);
        await sleep(50);
      }
      // Push `blobs` small blobs (4 KiB each), then pull each `rounds` times, 8 at a time.
      const digests = [];
      for (let i = 0; i < blobs; i++) {
        const bytes = Buffer.alloc(4096, i);
        const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
        const start = await request(agent, port, 'POST', '/v2/bench/blob/blobs/uploads/', headers);
        const loc = new URL(start.headers.location, `https://127.0.0.1:${port}`);
        loc.searchParams.set('digest', digest);
        const put = await request(agent, port, 'PUT', loc.pathname + loc.search, { ...headers, 'content-type': 'application/octet-stream' }, bytes);
        if (put.status !== 201) throw new Error(`push ${put.status}`);
        digests.push(digest);
      }
      const queue = Array.from({ length: rounds }, () => digests).flat();
      const cpu0 = cpuSeconds(proc.pid);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 8 }, async () => {
        for (let d = queue.pop(); d; d = queue.pop()) {
          const r = await request(agent, port, 'GET', `/v2/bench/blob/blobs/${d}`, headers);
          if (r.status !== 200) throw new Error(`pull ${r.status}`);
        }
      }));
      const seconds = (performance.now() - t0) / 1000;
      const pulls = blobs * rounds;
      rows.push({ mode, pulls, cpuMsPerBlob: ((cpuSeconds(proc.pid) - cpu0) * 1000) / pulls, rps: pulls / seconds });
    } finally {
      agent.destroy();
      proc.kill('SIGKILL');
    }
  }
  return rows;
}
