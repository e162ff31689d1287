// The trust boundaries under attack, against the real management and workload API servers and the
// bundle on Node, Deno and Bun. Each attack was reproduced against the earlier build (issue 13); here
// each must change nothing, run nothing, block nothing and grow nothing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import { join } from 'node:path';
import { realSuite } from './env/suite.ts';
import * as assert from 'uvu/assert';
import { clusterIssuerSecretName } from '../../src/render/metadata.ts';
import { openssl, sleep, WORK, workDir } from './env/base.ts';
import {
  createCluster, ensureNamespace, expectRetrying, extensionKubeconfig, generatePatchesRequest, getCluster, HOOK_PATHS, lifecycleRequest, markControlPlaneInitialized, ok, putKubeconfig,
} from './env/capi.ts';
import { RUNTIMES, startExtension, type Extension } from './env/extension.ts';
import { startEnv, type Env } from './env/index.ts';
import { startKube, type KubeApi } from './env/kube.ts';

const test = realSuite('attacks on the trust boundaries (real API servers, three runtimes)');
let env: Env;
let kubeconfig: string;
const PROVIDER = 'attack-provider';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const mgmt = () => env.management!;

test.before(async () => {
  env = await startEnv({ management: true, workload: true });
  await ensureNamespace(mgmt(), PROVIDER);
  kubeconfig = await extensionKubeconfig(mgmt(), 'capi-registry-addon', { providerNamespaces: [PROVIDER] });
});
test.after(async () => {
  await env?.stop();
});

const start = (runtime: string) => startExtension(runtime, { args: ['--no-seed', '--kubeconfig', kubeconfig, '--capi-version', 'v1.13', '--provider-namespace', PROVIDER, '--mint-root-ca', '--log-level', 'debug'] });
const hook = async (ext: Extension, name: keyof typeof HOOK_PATHS, cluster: unknown, query = '?timeout=10s') => {
  const r = await ext.post(HOOK_PATHS[name], lifecycleRequest(name, cluster), query);
  assert.is(r.status, 200, r.text);
  return r.json();
};

/** An opted-in Cluster with its registry deployed (BCC, then ACPI through its kubeconfig), at the workload API server's address. */
async function victim(ext: Extension, ns: string, name: string) {
  await createCluster(mgmt(), ns, name, { services: ['10.96.0.0/12'], registry: {} });
  const url = new URL(env.workload!.url);
  ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
  await markControlPlaneInitialized(mgmt(), ns, name);
  await putKubeconfig(mgmt(), ns, name, readFileSync(env.workload!.kubeconfig, 'utf8'));
  const cluster = await getCluster(mgmt(), ns, name);
  assert.is((await hook(ext, 'BeforeClusterCreate', cluster)).status, 'Success');
  const acpi = await hook(ext, 'AfterControlPlaneInitialized', cluster);
  assert.is(acpi.status, 'Success', acpi.message);
  return cluster;
}

/** Every object an attack could change: resourceVersions on both sides. */
async function state(ns: string, name: string) {
  const get = async (api: typeof env.management, path: string) => {
    const r = await api!.request('GET', path);
    return `${path}=${r.status === 200 ? r.body.metadata.resourceVersion : r.status}`;
  };
  return [
    await get(mgmt(), `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/${name}`),
    await get(mgmt(), `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${ns}/helmchartproxies/${name}-registry`),
    ...(await Promise.all(['ca', 'node', 'push'].map((s) => get(mgmt(), `/api/v1/namespaces/${ns}/secrets/${name}-registry-addon-${s}`)))),
    await get(mgmt(), `/api/v1/namespaces/${PROVIDER}/secrets/${await clusterIssuerSecretName(ns, name)}`),
    ...(await Promise.all(['registry-tls', 'registry-auth', 'registry-regsync-auth', 'registry-http-secret'].map((s) => get(env.workload, `/api/v1/namespaces/capi-registry/secrets/${s}`)))),
  ];
}

for (const runtime of Object.keys(RUNTIMES)) {
  test(`${runtime}: forged BeforeClusterDelete, BeforeClusterUpgrade (own image), double rotation and bogus uid bodies change nothing`, async () => {
    const ext = await start(runtime);
    try {
      const ns = `forged-${runtime}`;
      const cluster = await victim(ext, ns, 'c1');
      const before = await state(ns, 'c1');
      const proxyBefore = (await mgmt().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${ns}/helmchartproxies/c1-registry`)).body.spec.valuesTemplate;
      const forgedVars = (registry: unknown) => ({ ...cluster, spec: { ...cluster.spec, topology: { ...cluster.spec.topology, variables: [{ name: 'clusterConfig', value: { addons: { registry } } }] } } });

      // Delete a live Cluster (no deletionTimestamp): Success for CAPI's sake, nothing deleted.
      const del = await hook(ext, 'BeforeClusterDelete', cluster);
      assert.equal([del.status, del.message], ['Success', `Cluster ${ns}/c1: the Cluster is not being deleted (no deletionTimestamp); nothing deleted`]);
      // BCU asking for the attacker's image: the variables come from the API server. Its
      // toKubernetesVersion is not the Cluster's topology version either, so no certificate is issued.
      const bcu = await hook(ext, 'BeforeClusterUpgrade', forgedVars({ images: { registry: 'evil.example/registry:latest' } }));
      assert.is(bcu.status, 'Success', bcu.message);
      // Two rotations in a row through body annotations.
      for (const value of ['forged-1', 'forged-2']) {
        const rotated = { ...cluster, metadata: { ...cluster.metadata, annotations: { ...cluster.metadata.annotations, 'capi-registry-addon.io/rotate-credentials': value } } };
        assert.is((await hook(ext, 'BeforeClusterUpgrade', rotated)).status, 'Success');
      }
      // A bogus uid (which would become the owner reference of applied Secrets): refused by name.
      const bogus = await hook(ext, 'AfterControlPlaneInitialized', { ...cluster, metadata: { ...cluster.metadata, uid: '00000000-0000-0000-0000-000000000000' } });
      assert.equal([bogus.status, bogus.message], ['Failure', `Cluster ${ns}/c1: the request's metadata.uid "00000000-0000-0000-0000-000000000000" is not the Cluster's (${cluster.metadata.uid})`]);
      const noUid = await hook(ext, 'BeforeClusterDelete', { ...cluster, metadata: { name: 'c1', namespace: ns } });
      assert.match(noUid.message, /metadata\.uid "" is not the Cluster's .*; nothing deleted$/);
      // A Cluster the API server does not have.
      const ghost = await hook(ext, 'BeforeClusterUpgrade', { ...cluster, metadata: { ...cluster.metadata, name: 'ghost' } });
      assert.equal([ghost.status, ghost.message], ['Failure', `Cluster ${ns}/ghost: the request names a Cluster that the management API server does not have`]);

      assert.equal(await state(ns, 'c1'), before, 'every resourceVersion unchanged');
      const proxyAfter = (await mgmt().request('GET', `/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/${ns}/helmchartproxies/c1-registry`)).body.spec.valuesTemplate;
      assert.is(proxyAfter, proxyBefore);
      assert.not.match(proxyAfter, /evil\.example/);
      assert.match(ext.logs, /hook request does not match the API server; nothing done/, 'logged at warn');
    } finally {
      await ext.stop();
    }
  });

  test(`${runtime}: a tenant's kubeconfig with exec, auth-provider, file paths, a proxy, or another server runs nothing and reaches nothing: refused, naming the field`, async () => {
    const ext = await start(runtime);
    try {
      const ns = `kubeconfig-${runtime}`;
      const cluster = await victim(ext, ns, 'c1');
      const good = JSON.parse(readFileSync(env.workload!.kubeconfig, 'utf8'));
      const canary = join(WORK, `canary-${runtime}`);
      const node = RUNTIMES.node![0]!;
      const variants: [string, (kc: any) => void, RegExp][] = [
        ['exec', (kc) => { kc.users[0].user = { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: node, args: ['-e', `require('fs').writeFileSync('${canary}-exec', 'ran')`] } }; }, /users\["[^"]+"\]\.user\.exec is not accepted/],
        ['auth-provider', (kc) => { kc.users[0].user = { 'auth-provider': { name: 'gcp', config: { 'cmd-path': 'sh', 'cmd-args': `-c 'touch ${canary}-gcp'` } } }; }, /user\.auth-provider is not accepted/],
        ['file', (kc) => { kc.users[0].user = { 'client-certificate': '/etc/hostname', 'client-key': '/etc/hostname' }; }, /user\.client-certificate is not accepted/],
        ['proxy', (kc) => { kc.clusters[0].cluster['proxy-url'] = 'http://127.0.0.1:9'; }, /cluster\.proxy-url is not accepted/],
        ['insecure', (kc) => { kc.clusters[0].cluster['insecure-skip-tls-verify'] = true; }, /cluster\.insecure-skip-tls-verify is not accepted/],
        // Aimed at another server (here the management API server, which would then receive a registry key).
        ['server', (kc) => { kc.clusters[0].cluster.server = mgmt().url; kc.clusters[0].cluster['certificate-authority-data'] = b64(mgmt().ca.pem); }, /is not the Cluster's spec\.controlPlaneEndpoint/],
      ];
      const before = await state(ns, 'c1');
      for (const [name, edit, field] of variants) {
        const kc = structuredClone(good);
        edit(kc);
        await putKubeconfig(mgmt(), ns, 'c1', JSON.stringify(kc));
        // ACPI does not hold the Cluster back for its registry: Success, and the Cluster says why it retries.
        const reason = await expectRetrying(mgmt(), await hook(ext, 'AfterControlPlaneInitialized', cluster), ns, 'c1');
        assert.match(reason, new RegExp(`^Secret ${ns}/c1-kubeconfig refused: `), name);
        assert.match(reason, field, name);
      }
      await sleep(500);
      assert.not.ok(existsSync(`${canary}-exec`) || existsSync(`${canary}-gcp`), 'no command ran');
      // The workload side is untouched; the kubeconfig Secret was the only thing that changed.
      assert.equal((await state(ns, 'c1')).slice(5), before.slice(5));
      await putKubeconfig(mgmt(), ns, 'c1', readFileSync(env.workload!.kubeconfig, 'utf8'));
      assert.is((await hook(ext, 'AfterControlPlaneInitialized', cluster)).status, 'Success', 'the real kubeconfig works again');
    } finally {
      await ext.stop();
    }
  });

  test(`${runtime}: a cost-31 bcrypt hash planted in registry-auth is rewritten at once, while hooks for other Clusters keep answering`, async () => {
    const ext = await start(runtime);
    try {
      const ns = `bcrypt-${runtime}`;
      const cluster = await victim(ext, ns, 'c1');
      const planted = `node:$2b$31$${'a'.repeat(53)}\npush:$2b$31$${'b'.repeat(53)}\n`;
      ok(await env.workload!.request('PATCH', '/api/v1/namespaces/capi-registry/secrets/registry-auth', JSON.stringify({ data: { htpasswd: b64(planted) } }), 'application/merge-patch+json'), 'plant');
      const other = await createCluster(mgmt(), ns, 'other', { services: ['10.96.0.0/12'], registry: {} });
      const started = performance.now();
      const [bcu, ...others] = await Promise.all([
        hook(ext, 'BeforeClusterUpgrade', cluster),
        ...Array.from({ length: 5 }, async (_, i) => {
          await sleep(20 * i);
          const t = performance.now();
          const r = await hook(ext, 'BeforeClusterCreate', other);
          return { status: r.status, ms: performance.now() - t };
        }),
      ]);
      const ms = performance.now() - started;
      assert.is(bcu.status, 'Success', bcu.message);
      // Checking one cost-31 entry would take days (cost 16 alone takes seconds): 10 s proves it was never
      // checked, with room for a shared, loaded machine (1,047 ms was seen on Deno beside other suites).
      assert.ok(ms < 10_000, `BCU with a planted cost-31 hash answered in ${Math.round(ms)} ms`);
      for (const o of others) assert.ok(o.status === 'Success' && o.ms < 10_000, JSON.stringify(o));
      const htpasswd = text((await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-auth')).body.data.htpasswd);
      assert.match(htpasswd, /^node:\$2b\$04\$.{53}\npush:\$2b\$04\$.{53}\n$/, 'rewritten at our cost');
    } finally {
      await ext.stop();
    }
  });

  test(`${runtime}: the worst bodies anyone can send keep RSS under the 256 MiB limit; forged Cluster names (20,000 on Node) leave /metrics bounded; TLS below 1.2 refused`, async () => {
    const ext = await start(runtime);
    try {
      const peak = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
      await ext.request('GET', '/metrics', undefined, false);
      const idle = rss();
      // The largest body accepted (1 MiB), of the JSON that costs the most memory per byte: empty arrays
      // (and objects). Six at once: two fit the server's body budget, the others are refused at once.
      const worst = (open: string) => {
        const head = '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"GeneratePatchesRequest","items":[';
        const n = Math.floor((1024 * 1024 - head.length - 8) / 3);
        return `${head}${`${open},`.repeat(n - 1)}${open}]}`;
      };
      for (const open of ['[]', '{}']) {
        const body = worst(open);
        const replies = await Promise.all(Array.from({ length: 6 }, () => ext.request('POST', `${HOOK_PATHS.GeneratePatches}?timeout=10s`, body, false)));
        for (const r of replies) assert.is(r.json().status, 'Failure');
        assert.ok(replies.some((r) => /opens \d+ JSON objects and arrays, more than the 65536/.test(r.json().message)), `counted and refused: ${replies.map((r) => r.json().message).join(' / ')}`);
      }
      // Just under the bound: parsed, then refused by validation. The most memory a body can still cost.
      for (const open of ['[]', '{}']) {
        const head = '{"apiVersion":"hooks.runtime.cluster.x-k8s.io/v1alpha1","kind":"GeneratePatchesRequest","items":[';
        const body = `${head}${`${open},`.repeat(65_000)}${open}]}${' '.repeat(1024 * 1024 - head.length - 3 * 65_001 - 2)}`;
        const replies = await Promise.all(Array.from({ length: 6 }, () => ext.request('POST', `${HOOK_PATHS.GeneratePatches}?timeout=10s`, body, false)));
        for (const r of replies) assert.is(r.json().status, 'Failure');
        assert.ok(replies.some((r) => /invalid GeneratePatchesRequest: items\[0\]/.test(r.json().message)), `parsed and refused: ${replies.map((r) => r.json().message).join(' / ')}`);
      }
      const worstPeak = peak();
      console.log(`  ${runtime}: idle RSS ${idle.toFixed(1)} MiB, peak after worst bodies ${worstPeak.toFixed(1)} MiB`);
      assert.ok(worstPeak < 200, `peak RSS ${worstPeak.toFixed(1)} MiB (limit 256 MiB)`);

      // 20,000 opted-in claims for Clusters that do not exist (Node; 2,000 on Deno and Bun: the metrics
      // code is the same on every runtime, only the HTTP adapter differs, and each claim costs an API read).
      const forged = runtime === 'node' ? 20_000 : 2_000;
      const names = Array.from({ length: forged }, (_, i) => `forged-${i}-${Math.random().toString(36).slice(2, 10)}`);
      const body = (name: string) => lifecycleRequest('BeforeClusterCreate', { metadata: { name, namespace: 'nowhere', uid: 'u' }, spec: { topology: { variables: [{ name: 'clusterConfig', value: { addons: { registry: {} } } }] } } });
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < names.length) {
          const r = await ext.post(HOOK_PATHS.BeforeClusterCreate, body(names[next++]!));
          assert.is(r.json().status, 'Failure');
        }
      }));
      const metrics = (await ext.request('GET', '/metrics', undefined, false)).text;
      console.log(`  ${runtime}: /metrics after ${forged} forged names: ${metrics.length} bytes`);
      assert.not.match(metrics, /forged-\d+-/, 'no forged name in any label');
      assert.ok(metrics.length < 50_000, `${metrics.length} bytes`);

      // TLS 1.0 and 1.1 refused, 1.2 accepted (openssl told to allow the old versions on its side).
      const handshake = (version: string) => spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${ext.port}`, version, '-cipher', 'DEFAULT@SECLEVEL=0'], { input: '', encoding: 'utf8', timeout: 10_000 });
      for (const old of ['-tls1', '-tls1_1']) {
        // Node and Bun (OpenSSL) answer with a protocol_version alert, Deno (rustls) with handshake_failure: no session either way.
        const r = handshake(old);
        assert.match(`${r.stdout}${r.stderr}`, /alert protocol version|alert handshake failure/, `${runtime} ${old}`);
        assert.match(r.stdout, /Cipher is \(NONE\)/, `${runtime} ${old}: no session`);
      }
      assert.match(handshake('-tls1_2').stdout, /Protocol\s*:\s*TLSv1\.2/);
    } finally {
      await ext.stop();
    }
  });
}

test('one registry identity per Cluster: a client trusting B\'s CA Secret rejects A\'s registry certificate; one trusting the root accepts both (openssl)', async () => {
  const ext = await start('node');
  try {
    const ns = 'cross';
    const tlsOf = async () => (await env.workload!.request('GET', '/api/v1/namespaces/capi-registry/secrets/registry-tls')).body.data;
    // Both Clusters' registries are written to the one workload API server here: read each in turn.
    await victim(ext, ns, 'a');
    const a = await tlsOf();
    await victim(ext, ns, 'b');
    const b = await tlsOf();
    const caOf = async (name: string) => text((await mgmt().request('GET', `/api/v1/namespaces/${ns}/secrets/${name}-registry-addon-ca`)).body.data['ca.crt']);
    const root = text((await mgmt().request('GET', `/api/v1/namespaces/${PROVIDER}/secrets/registry-addon-root-ca`)).body.data['ca.crt']);
    const dir = workDir('cross');
    const files = { aChain: text(a['tls.crt']), bChain: text(b['tls.crt']), aCa: await caOf('a'), bCa: await caOf('b'), root };
    for (const [name, pem] of Object.entries(files)) writeFileSync(join(dir, name), pem);
    // -partial_chain: trust anchors may be intermediates, as Go's TLS (containerd, regbot) and curl treat them.
    const verify = (ca: string, chain: string) => spawnSync('openssl', ['verify', '-partial_chain', '-CAfile', ca, '-untrusted', chain, chain], { cwd: dir, encoding: 'utf8' });
    assert.is(verify('aCa', 'aChain').status, 0, 'A trusts A');
    assert.is(verify('bCa', 'bChain').status, 0, 'B trusts B');
    const crossed = verify('bCa', 'aChain');
    assert.is.not(crossed.status, 0, 'B\'s CA Secret must reject A\'s registry');
    assert.match(crossed.stderr + crossed.stdout, /unable to get local issuer certificate/);
    assert.is.not(verify('aCa', 'bChain').status, 0, 'and the other way round');
    for (const chain of ['aChain', 'bChain']) assert.is(openssl(['verify', '-CAfile', 'root', '-untrusted', chain, chain], dir).trim(), `${chain}: OK`, 'the root trusts both');
  } finally {
    await ext.stop();
  }
});

const FLOOD_CONNECTIONS = 8;
for (const runtime of Object.keys(RUNTIMES)) {
  test(`${runtime}: a flood of forged hook bodies (the real Cluster's name with other UIDs, Clusters that do not exist, GeneratePatches alternating opt-in and out): the real BeforeClusterCreate is answered within a second, passes are not forced back to back, RSS stays bounded`, async () => {
    const ext = await start(runtime);
    // 8 connections from one client: the flood generator shares the machine's 2 cores with everything it floods.
    const flooder = new https.Agent({ keepAlive: true, maxSockets: FLOOD_CONNECTIONS, rejectUnauthorized: false });
    try {
      const ns = `flood-${runtime}`;
      const cluster = await victim(ext, ns, 'c1');
      const forgedUid = (i: number) => lifecycleRequest('BeforeClusterCreate', { ...cluster, metadata: { ...cluster.metadata, uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}` } });
      const ghost = (i: number) => lifecycleRequest('BeforeClusterCreate', { ...cluster, metadata: { ...cluster.metadata, name: `ghost-${i}` } });
      const flipping = (i: number) => generatePatchesRequest(ns, 'c1', { services: ['10.96.0.0/12'], ...(i % 2 ? { registry: {} } : {}) });
      const bodies = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? [HOOK_PATHS.BeforeClusterCreate, forgedUid(i)] : i % 3 === 1 ? [HOOK_PATHS.BeforeClusterCreate, ghost(i)] : [HOOK_PATHS.GeneratePatches, flipping(i)]) as [string, string]);
      const timeBcc = async () => {
        const began = performance.now();
        const real = await hook(ext, 'BeforeClusterCreate', cluster);
        assert.is(real.status, 'Success', real.message);
        return Math.round(performance.now() - began);
      };
      const quiet = [await timeBcc(), await timeBcc(), await timeBcc()];
      const passesBefore = (ext.logs.match(new RegExp(`background convergence.*${ns}/c1`, 'g')) ?? []).length;
      const answers: Record<string, number> = {};
      let next = 0;
      const flood = Promise.all(Array.from({ length: FLOOD_CONNECTIONS }, async () => {
        while (next < bodies.length) {
          const [path, body] = bodies[next++]!;
          const r = await ext.request('POST', `${path}?timeout=10s`, body, flooder).catch((err: Error) => ({ status: 0, text: err.message, json: () => ({}) }));
          const key = r.status === 200 ? `200 ${r.json().status}` : String(r.status);
          answers[key] = (answers[key] ?? 0) + 1;
        }
      }));
      await sleep(500);
      const latencies: number[] = [];
      for (let i = 0; i < 5 && next < bodies.length; i++) latencies.push(await timeBcc());
      await flood;
      const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
      const after = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
      const passes = (ext.logs.match(new RegExp(`background convergence.*${ns}/c1`, 'g')) ?? []).length - passesBefore;
      console.log(`  ${runtime}: 3,000 forged bodies, ${FLOOD_CONNECTIONS} at a time: answers ${JSON.stringify(answers)}; the real BCC in ${latencies.join(', ')} ms during the flood (${quiet.join(', ')} ms without); ${passes} background passes for the Cluster; peak RSS ${peak.toFixed(0)} MiB, ${after.toFixed(0)} MiB after`);
      assert.ok(latencies.length >= 3, 'measured while the flood ran');
      assert.ok(Math.max(...latencies) < 1000, `real BeforeClusterCreate answered in ${latencies.join(', ')} ms`);
      assert.ok(passes <= 2, `alternating claims forced ${passes} passes`);
      // Bounded: the work a body can cause is bounded (shared reads, a bounded wait list); the Deployment's limit is 768 MiB.
      assert.ok(peak < 512, `peak RSS ${peak.toFixed(0)} MiB`);
      assert.is((answers['200 Failure'] ?? 0) + (answers['503'] ?? 0) >= 2000, true, 'every forged lifecycle body refused (or shed)');
    } finally {
      flooder.destroy();
      await ext.stop();
    }
  });
}

/** A workload API server whose 1,000 Nodes carry 250 KB of annotations each (~250 MB of Node metadata), made once. */
let fatNodes: KubeApi | undefined;
async function fatNodeCluster(): Promise<KubeApi> {
  if (fatNodes) return fatNodes;
  const api = await startKube('fat-nodes', { serviceCidr: '10.96.0.0/12' });
  fatNodes = api;
  const filler = 'x'.repeat(250_000);
  const create = async (i: number) => ok(await api.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: `node-${i}`, annotations: { 'tenant.example/filler': filler } } }), `Node ${i}`);
  for (let i = 0; i < 1000; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => create(i + k)));
  return api;
}
test.after(async () => {
  await fatNodes?.stop();
});

for (const runtime of Object.keys(RUNTIMES)) {
  test(`${runtime}: a workload cluster of 1,000 Nodes with 250 KB of annotations each: read in bounded pages of metadata, RSS stays bounded, the Cluster's mark says what was too large`, async () => {
    const api = await fatNodeCluster();
    const ext = await start(runtime);
    try {
      const ns = `fat-nodes-${runtime}`;
      await createCluster(mgmt(), ns, 'c1', { services: ['10.96.0.0/12'], registry: {} });
      const url = new URL(api.url);
      ok(await mgmt().request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/${ns}/clusters/c1`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
      await markControlPlaneInitialized(mgmt(), ns, 'c1');
      await putKubeconfig(mgmt(), ns, 'c1', readFileSync(api.kubeconfig, 'utf8'));
      const cluster = await getCluster(mgmt(), ns, 'c1');
      assert.is((await hook(ext, 'BeforeClusterCreate', cluster)).status, 'Success');
      const idle = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
      const acpi = await hook(ext, 'AfterControlPlaneInitialized', cluster);
      assert.is(acpi.status, 'Success', acpi.message);
      const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
      const marked = (await getCluster(mgmt(), ns, 'c1')).metadata.annotations['capi-registry-addon.io/node-mirror'];
      assert.is(marked, 'not counted: list Node (metadata, pages of 500): the API server\'s answer is larger than 8 MiB: not read');
      // What the API server was asked: metadata-only pages of 500, never a whole list.
      const lists = api.audit().filter((e) => e.verb === 'list' && e.objectRef?.resource === 'nodes' && /capi-registry-addon/.test(e.userAgent ?? ''));
      assert.ok(lists.length >= 1, 'the Node list was asked for');
      for (const e of lists) assert.match(e.requestURI ?? '', /[?&]limit=500\b/, `paged: ${e.requestURI}`);
      console.log(`  ${runtime}: RSS ${idle.toFixed(0)} MiB before the pass, peak ${peak.toFixed(0)} MiB (the Nodes' metadata: ~250 MB)`);
      assert.ok(peak < 300, `peak RSS ${peak.toFixed(0)} MiB: the answer was not read whole (the Deployment's limit is 768 MiB)`);
    } finally {
      await ext.stop();
    }
  });
}

test.run();
