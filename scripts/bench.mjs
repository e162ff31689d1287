// `npm run bench`: hook latency and throughput, cold start, bundle size and idle RSS of the bundle on
// Node (LTS), Deno and Bun, each next to a baseline measured in the same run (the runtime's leanest
// HTTPS server reading the same request body and answering a constant one). Prints a table; never fails on a number: targets are
// reported, not asserted (machines are shared and noisy).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { build } from 'esbuild';
import { join } from 'node:path';
import { benchRegistryAuth } from './bench-registry-auth.mjs';
import { benchNodePenalty, printNodePenalty } from './bench-node.mjs';
import { freePort } from './lib/ports.mjs';

const ROOT = process.cwd();
const BUNDLE = join(ROOT, 'dist', 'capi-registry-addon.mjs');
const bin = (n) => join(ROOT, 'node_modules', '.bin', n);
// The extension runs with the flags it ships with (src/server/runtime-flags.json, as the image runs it).
const FLAGS = JSON.parse(readFileSync(join(ROOT, 'src', 'server', 'runtime-flags.json'), 'utf8'));
const RUNTIMES = { node: [bin('node'), ...FLAGS.node], deno: [bin('deno'), 'run', '--allow-all', '--quiet', ...FLAGS.deno], bun: [bin('bun'), ...FLAGS.bun] };
const ONLY = process.env.BENCH_RUNTIMES?.split(',');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = 16;
const PREFIX = '/hooks.runtime.cluster.x-k8s.io/v1alpha1';
const work = mkdtempSync(join(tmpdir(), 'capi-registry-addon-bench-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- inputs -------------------------------------------------------------------------------------
spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-out', 'tls.crt',
  '-days', '1', '-subj', '/CN=bench', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: work });
const certFile = join(work, 'tls.crt');
const keyFile = join(work, 'tls.key');
const ca = readFileSync(certFile, 'utf8');

const fixture = (name) => readFileSync(join(ROOT, 'test', 'fixtures', 'capi', 'v1.12', `${name}.json`), 'utf8');
const DISCOVERY = fixture('discovery');
const BCC = fixture('before-cluster-create.not-opted-in');
/** A realistic ~100 KB GeneratePatches: a KCPT with a full kubeadm spec and files, three KCTs. */
function bigGeneratePatches(optedIn) {
  const req = JSON.parse(fixture(`generate-patches.${optedIn ? 'opted-in' : 'not-opted-in'}`));
  const [infra, kcpt, kct] = req.items;
  const file = (i, size) => ({ path: `/etc/kubernetes/extra/file-${i}.yaml`, owner: 'root:root', permissions: '0600', content: `# generated\n${'key: value-with-some-realistic-length\n'.repeat(size / 37)}` });
  kcpt.object.spec.template.spec.kubeadmConfigSpec.files.push(...Array.from({ length: 12 }, (_, i) => file(i, 4000)));
  kcpt.object.spec.template.spec.kubeadmConfigSpec.preKubeadmCommands = Array.from({ length: 40 }, (_, i) => `echo step ${i} && systemctl daemon-reload`);
  const workers = [0, 1, 2].map((n) => {
    const copy = structuredClone(kct);
    copy.uid = `5f0d3b12-efb4-11f0-8a44-0242ac12000${n}`;
    copy.holderReference.name = `my-cluster-md-${n}-zt6bh`;
    copy.object.spec.template.spec.files = Array.from({ length: 4 }, (_, i) => file(i, 3000));
    return copy;
  });
  req.items = [infra, kcpt, ...workers];
  return JSON.stringify(req);
}
const GP = bigGeneratePatches(false);
// Opted in: the answer carries a JSON patch per kubeadm template (the node files), base64-encoded.
const GP_OPTED_IN = bigGeneratePatches(true);

const ENDPOINTS = [
  { name: 'discovery', path: `${PREFIX}/discovery?timeout=10s`, body: DISCOVERY },
  { name: 'BeforeClusterCreate (not opted in)', path: `${PREFIX}/beforeclustercreate/before-cluster-create?timeout=10s`, body: BCC },
  { name: `GeneratePatches, not opted in (${(GP.length / 1024).toFixed(0)} KB, 1 KCPT + 3 KCT)`, path: `${PREFIX}/generatepatches/generate-patches?timeout=10s`, body: GP },
  { name: `GeneratePatches, opted in (${(GP_OPTED_IN.length / 1024).toFixed(0)} KB, 1 KCPT + 3 KCT: 4 patches)`, path: `${PREFIX}/generatepatches/generate-patches?timeout=10s`, body: GP_OPTED_IN },
];

// --- client ---------------------------------------------------------------------------------------
function post(agent, port, path, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method: 'POST', path, agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Closed loop: CONCURRENCY callers for SECONDS. */
async function closedLoop(port, ep) {
  const agent = new https.Agent({ keepAlive: true, ca, maxSockets: CONCURRENCY });
  for (let i = 0; i < 200; i++) await post(agent, port, ep.path, ep.body); // warm-up (JIT, TLS sessions)
  const lat = [];
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await post(agent, port, ep.path, ep.body);
      lat.push(performance.now() - t);
    }
  }));
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rps: lat.length / SECONDS, p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** Open loop at a fixed rate: latency as a caller at `rate` requests/s sees it. */
async function fixedRate(port, ep, rate, seconds) {
  const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 64 });
  for (let i = 0; i < 200; i++) await post(agent, port, ep.path, ep.body);
  const lat = [];
  const pending = [];
  const start = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const t = performance.now();
    pending.push(post(agent, port, ep.path, ep.body).then(() => lat.push(performance.now() - t)));
  }
  await Promise.all(pending);
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length };
}

// --- processes ------------------------------------------------------------------------------------
function startProcess(runtime, kind, port) {
  const cmd = RUNTIMES[runtime];
  const args = kind === 'ours'
    ? [BUNDLE, 'serve', '--listen', `127.0.0.1:${port}`, '--tls-cert-file', certFile, '--tls-key-file', keyFile, '--log-level', 'error']
    : [join(ROOT, 'scripts', 'bench-baseline.mjs'), String(port), certFile, keyFile];
  return spawn(cmd[0], [...cmd.slice(1), ...args], { stdio: 'ignore', env: { PATH: process.env.PATH, HOME: work } });
}
async function untilDiscovery(port, deadlineMs = 20_000) {
  const agent = new https.Agent({ keepAlive: false, ca });
  const end = performance.now() + deadlineMs;
  for (;;) {
    try {
      await post(agent, port, ENDPOINTS[0].path, DISCOVERY);
      return;
    } catch {
      if (performance.now() > end) throw new Error('no discovery answer');
      await sleep(2);
    }
  }
}
const stop = (p) => new Promise((r) => { if (p.exitCode !== null) return r(); p.once('exit', r); p.kill('SIGKILL'); });
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function coldStart(runtime, kind) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const t = performance.now();
    const p = startProcess(runtime, kind, port);
    await untilDiscovery(port);
    times.push(performance.now() - t);
    await stop(p);
  }
  times.sort((a, b) => a - b);
  return times[2];
}

// --- CAPI's own Go runtime-extension server, the same GeneratePatches ------------------------------
/** Our opted-in answer, as JSON patches by template kind: what the Go server answers with. */
async function patchesByKind(port) {
  const agent = new https.Agent({ keepAlive: false, ca });
  const text = await new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method: 'POST', path: ENDPOINTS[3].path, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end(GP_OPTED_IN);
  });
  const kindOf = Object.fromEntries(JSON.parse(GP_OPTED_IN).items.map((i) => [i.uid, i.object.kind]));
  return Object.fromEntries(JSON.parse(text).items.map((i) => [kindOf[i.uid], JSON.parse(Buffer.from(i.patch, 'base64').toString('utf8'))]));
}

/** Builds scripts/go-baseline (CAPI v1.14.2's exp/runtime/server) with the Go toolchain and the module proxy; cached. */
function buildGoBaseline() {
  const dir = join(process.env.HOME ?? tmpdir(), '.cache', 'capi-registry-addon', 'mod', 'go-baseline');
  const bin = join(dir, 'go-baseline');
  const env = { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
  const run = (args) => {
    const r = spawnSync('go', args, { cwd: dir, env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`go ${args.join(' ')}: ${r.stderr || r.error}`);
  };
  spawnSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'main.go'), readFileSync(join(ROOT, 'scripts', 'go-baseline', 'main.go')));
  if (!statSafe(join(dir, 'go.mod'))) run(['mod', 'init', 'scratch/go-baseline']);
  run(['mod', 'edit', `-require=sigs.k8s.io/cluster-api@${GO_CAPI}`, `-require=sigs.k8s.io/cluster-api/api@${GO_CAPI}`]);
  run(['mod', 'tidy']);
  run(['build', '-trimpath', '-o', bin, '.']);
  return bin;
}
const statSafe = (p) => { try { return statSync(p); } catch { return undefined; } };
const GO_CAPI = 'v1.14.2';

async function goBaseline(ops) {
  const bin = buildGoBaseline();
  writeFileSync(join(work, 'ops.json'), JSON.stringify(ops));
  const port = await freePort();
  const p = spawn(bin, ['-port', String(port), '-cert-dir', work, '-ops', join(work, 'ops.json')], { stdio: 'ignore' });
  try {
    await untilDiscovery(port);
    const loop = await closedLoop(port, ENDPOINTS[3]);
    const rate = await fixedRate(port, ENDPOINTS[3], 200, Math.max(5, SECONDS));
    return { loop, rate, rss: rssMiB(p.pid) };
  } finally {
    await stop(p);
  }
}

// --- run ------------------------------------------------------------------------------------------
const rows = [];
let goOps;
const optedIn = {};
const f = (n, d = 2) => n.toFixed(d);
for (const runtime of Object.keys(RUNTIMES).filter((r) => !ONLY || ONLY.includes(r))) {
  const cold = await coldStart(runtime, 'ours');
  const coldBase = await coldStart(runtime, 'baseline');
  const port = await freePort();
  const ours = startProcess(runtime, 'ours', port);
  await untilDiscovery(port);
  await sleep(1000);
  const idleRss = rssMiB(ours.pid);
  const basePort = await freePort();
  const base = startProcess(runtime, 'baseline', basePort);
  await untilDiscovery(basePort);
  await sleep(1000);
  const idleRssBase = rssMiB(base.pid);
  for (const ep of ENDPOINTS) {
    // Same request body to the baseline, so the ratio is our parsing, validation and handling alone.
    const baseline = await closedLoop(basePort, ep);
    const r = await closedLoop(port, ep);
    rows.push({ runtime, what: ep.name, ...r, ratio: `${f(r.p50 / baseline.p50, 1)}x p50, ${f(r.rps / baseline.rps, 2)}x rps (baseline ${f(baseline.rps, 0)} rps)` });
  }
  // The path every opted-in Cluster's topology reconcile takes.
  if (!goOps) goOps = await patchesByKind(port);
  const rate = await fixedRate(port, ENDPOINTS[3], 200, Math.max(5, SECONDS));
  optedIn[runtime] = { loop: rows.find((r) => r.runtime === runtime && r.what === ENDPOINTS[3].name), rate };
  rows.push({ runtime, what: `GeneratePatches, opted in, at 200 req/s (${rate.n} requests)`, p50: rate.p50, p99: rate.p99, target: `p99 <= 5 ms: ${rate.p99 <= 5 ? 'met' : 'MISSED'}` });
  const loadedRss = rssMiB(ours.pid);
  rows.push({ runtime, what: 'cold start: spawn to first discovery over TLS (median of 5)', ms: cold, ratio: `baseline ${f(coldBase, 0)} ms`, target: `<= 300 ms: ${cold <= 300 ? 'met' : 'MISSED'}` });
  rows.push({ runtime, what: 'idle RSS MiB (after 1 discovery)', mib: idleRss, ratio: `baseline ${f(idleRssBase, 1)} MiB; ${f(loadedRss, 1)} MiB after load`, target: `<= 80 MB: ${idleRss * 1.048576 <= 80 ? 'met' : 'MISSED'}` });
  await stop(ours);
  await stop(base);
}

if (goOps && process.env.BENCH_GO !== '0') {
  try {
    const go = await goBaseline(goOps);
    rows.push({ runtime: `go (CAPI ${GO_CAPI} runtime server)`, what: ENDPOINTS[3].name, ...go.loop, ratio: 'the same request, the same patches' });
    rows.push({ runtime: `go (CAPI ${GO_CAPI} runtime server)`, what: `GeneratePatches, opted in, at 200 req/s (${go.rate.n} requests)`, p50: go.rate.p50, p99: go.rate.p99 });
    for (const [runtime, o] of Object.entries(optedIn)) {
      rows.push({ runtime, what: 'opted-in GeneratePatches next to the Go server', ratio: `${f(o.loop.rps / go.loop.rps, 2)}x its rps, ${f(o.loop.p50 / go.loop.p50, 2)}x its p50; at 200 req/s p99 ${f(o.rate.p99, 2)} ms vs ${f(go.rate.p99, 2)} ms` });
    }
  } catch (err) {
    rows.push({ runtime: 'go', what: 'CAPI runtime server baseline', ratio: `not measured: ${String(err.message ?? err).slice(0, 200)}` });
  }
}

// --- certificate issuance: in-process on each runtime, next to openssl doing the same ------------
/** Bundles an in-process bench script and runs it on every runtime; it prints {what: numbers}. */
async function inProcess(script) {
  const out = join(work, script.replace(/\.ts$/, '.mjs'));
  await build({ entryPoints: [join(ROOT, 'scripts', script)], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node22', loader: { '.wasm': 'binary', '.sh': 'text' }, logLevel: 'warning' });
  const rows = [];
  for (const runtime of Object.keys(RUNTIMES).filter((r) => !ONLY || ONLY.includes(r))) {
    const cmd = RUNTIMES[runtime];
    const r = spawnSync(cmd[0], [...cmd.slice(1), out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${script} on ${runtime}: ${r.stderr}`);
    for (const [what, v] of Object.entries(JSON.parse(r.stdout))) rows.push({ runtime, what, ...v });
  }
  return rows;
}
const pkiRows = await inProcess('bench-pki.ts');
/** openssl: one `req -x509 -CA` process per issuance (new key + signed certificate), as an installer would run it. */
function opensslIssuance(caAlg, leafAlg, n) {
  const d = mkdtempSync(join(work, 'ossl-'));
  const keyArgs = (alg) => (alg === 'rsa-2048' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  spawnSync('openssl', ['req', '-x509', ...keyArgs(caAlg), '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { cwd: d });
  const lat = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = spawnSync('openssl', ['req', '-x509', '-CA', 'ca.crt', '-CAkey', 'ca.key', ...keyArgs(leafAlg), '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.crt',
      '-days', '730', '-subj', '/CN=registry', '-addext', 'subjectAltName=DNS:registry.capi-registry.svc,IP:10.96.0.20,IP:127.0.0.1',
      '-addext', 'extendedKeyUsage=serverAuth', '-addext', 'basicConstraints=critical,CA:FALSE'], { cwd: d });
    if (r.status !== 0) throw new Error(`openssl issuance failed: ${r.stderr}`);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), n };
}
for (const caAlg of ['rsa-2048', 'ecdsa-p256']) {
  for (const leafAlg of ['ecdsa-p256', 'rsa-2048']) {
    pkiRows.push({ runtime: 'openssl', what: `${leafAlg} leaf / ${caAlg} CA`, ...opensslIssuance(caAlg, leafAlg, leafAlg === 'rsa-2048' ? 40 : 100) });
  }
}

// --- bcrypt: the WebAssembly kernel next to bcryptjs, per runtime ---------------------------------
const bcryptRows = await inProcess('bench-bcrypt.ts');
const registryAuthRows = await benchRegistryAuth({ work, certFile, keyFile, ca });

const bundleKiB = statSync(BUNDLE).size / 1024;
console.log(`\ncapi-registry-addon bench — ${new Date().toISOString()}, ${SECONDS}s per closed-loop run, concurrency ${CONCURRENCY}, client: Node ${process.versions.node}`);
console.log(`bundle: ${f(bundleKiB, 0)} KiB (${BUNDLE.replace(ROOT + '/', '')})\n`);
/** A Markdown table with padded columns. */
function printTable(header, table) {
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
}
printTable(['runtime', 'measurement', 'req/s', 'p50 ms', 'p99 ms', 'value', 'vs baseline', 'target'], rows.map((r) => [r.runtime, r.what, r.rps ? f(r.rps, 0) : '',
  r.p50 !== undefined ? f(r.p50) : '', r.p99 !== undefined ? f(r.p99) : '', r.ms !== undefined ? `${f(r.ms, 0)} ms` : r.mib !== undefined ? `${f(r.mib, 1)} MiB` : '', r.ratio ?? '', r.target ?? '']));

console.log(`\nserver-certificate issuance (new key + signed leaf), ms; openssl = one \`openssl req -x509 -CA\` process each (includes process start)`);
const osslP50 = Object.fromEntries(pkiRows.filter((r) => r.runtime === 'openssl').map((r) => [r.what, r.p50]));
printTable(['runtime', 'issuance', 'n', 'p50 ms', 'p99 ms', 'vs openssl p50', 'target'], pkiRows.map((r) => [r.runtime, r.what, String(r.n), f(r.p50), f(r.p99),
  r.runtime === 'openssl' ? '' : `${f(r.p50 / osslP50[r.what], 2)}x`, r.runtime === 'node' && r.what.startsWith('ecdsa') ? `p50 <= 5 ms: ${r.p50 <= 5 ? 'met' : 'MISSED'}` : '']));

console.log('\nbcrypt hash, ms per hash (mean): WebAssembly kernel vs bcryptjs (pure JS oracle)');
printTable(['runtime', 'cost', 'n', 'wasm ms', 'bcryptjs ms', 'speed-up'], bcryptRows.map((r) => [r.runtime, r.what, String(r.n), f(r.wasm), f(r.bcryptjs), `${f(r.bcryptjs / r.wasm, 2)}x`]));
console.log('\nregistry CPU per pulled 4 KiB blob (real Distribution, 1,000 pulls, 8 at a time): htpasswd auth vs off (baseline, same run)');
if (!registryAuthRows) console.log('(skipped: the Distribution binary is not built yet; run npm test once, or bash scripts/components.sh)');
else {
  const off = registryAuthRows[0];
  printTable(['mode', 'pulls', 'CPU ms per blob', 'vs auth off', 'pulls/s'], registryAuthRows.map((r) => [r.mode, String(r.pulls), f(r.cpuMsPerBlob, 3), `${f(r.cpuMsPerBlob / off.cpuMsPerBlob, 2)}x`, f(r.rps, 0)]));
}
// Nodes: the bootstrap penalty per containerd version (root, network namespaces, the built components).
let nodeRows;
try {
  nodeRows = await benchNodePenalty();
  printNodePenalty(nodeRows);
} catch (err) {
  console.log(`\nbootstrap penalty: not measured (${err.message.split('\n')[0]}); run npm test once (components), as root`);
}
writeFileSync(join(ROOT, '.cache', 'bench-last.json'), JSON.stringify({ rows, pkiRows, bcryptRows, registryAuthRows, nodeRows, bundleKiB }, null, 1));
rmSync(work, { recursive: true, force: true });
