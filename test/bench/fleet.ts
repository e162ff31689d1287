// `npm run bench:fleet`: the extension at fleet scale, against a real management API server. For each
// fleet size N: N opted-in Clusters exist (three of them initialized, each with a workload API server
// of its own; the rest before ACPI), then two replicas start (a restart). Measured: time until every
// Cluster is converged (the seed list, then the background loop), API requests per Cluster per pass in
// steady state and how many are writes (the API servers' audit logs, by our user agent; the replicas'
// member Lease renewals counted apart), and each replica's RSS. With FLEET_FROZEN percent > 0, that
// share of the Clusters is initialized against one more workload API server that is frozen (SIGSTOP:
// it accepts connections and answers nothing): the others must converge as fast. Prints one JSON line
// per size and frozen share.
import { readFileSync, readlinkSync } from 'node:fs';
import { sleep, waitFor } from '../integration/env/base.ts';
import { createCluster, ensureNamespace, extensionKubeconfig, markControlPlaneInitialized, ok, putKubeconfig } from '../integration/env/capi.ts';
import { startExtension, type Extension } from '../integration/env/extension.ts';
import { startEnv } from '../integration/env/index.ts';
import { startKube, WRITE_VERBS, type AuditEvent, type KubeApi } from '../integration/env/kube.ts';

const SIZES = (process.env.FLEET_SIZES ?? '100,1000').split(',').map(Number);
const RUNTIMES = (process.env.FLEET_RUNTIMES ?? 'node,node').split(',');
const INTERVAL_S = Number(process.env.FLEET_INTERVAL_SECONDS ?? 30);
const FROZEN = (process.env.FLEET_FROZEN ?? '0,5').split(',').map(Number);
const PROVIDER = 'fleet-provider';
const statusMiB = (ext: Extension, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${ext.proc.pid}/status`, 'utf8'))![1]) / 1024;
const rssMiB = (ext: Extension) => statusMiB(ext, 'VmRSS');

/**
 * Where a replica's resident memory is, from /proc/PID/smaps: the runtime's own binary (text and data),
 * other files (libraries), glibc's main heap ([heap], brk), and anonymous mappings (V8's heap, malloc's
 * other arenas and large allocations, thread stacks). The JavaScript heap's own size comes from the
 * process-memory gauge beside it.
 */
function smapsBreakdown(ext: Extension): Record<string, number> {
  const out: Record<string, number> = { binary: 0, libraries: 0, brkHeap: 0, anonymous: 0 };
  let kind = 'anonymous';
  const exe = readlinkSync(`/proc/${ext.proc.pid}/exe`);
  for (const line of readFileSync(`/proc/${ext.proc.pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const name = mapping[1]!;
      kind = name === '[heap]' ? 'brkHeap' : name === '' || name.startsWith('[') ? 'anonymous' : name === exe ? 'binary' : 'libraries';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind]! += Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, +v.toFixed(1)]));
}
const ours = (e: AuditEvent) => (e.userAgent ?? '').startsWith('capi-registry-addon/');

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

async function measure(n: number, frozenPercent: number) {
  const env = await startEnv({ management: true, workload: true });
  const workloads: KubeApi[] = [env.workload!, await startKube('fleet-b', { serviceCidr: '10.96.0.0/12' }), await startKube('fleet-c', { serviceCidr: '10.96.0.0/12' })];
  const frozenCount = Math.round((n * frozenPercent) / 100);
  const frozen = frozenCount ? await startKube('fleet-frozen', { serviceCidr: '10.96.0.0/12' }) : undefined;
  const api = env.management!;
  const replicas: Extension[] = [];
  try {
    await ensureNamespace(api, PROVIDER);
    const names = Array.from({ length: n }, (_, i) => `c${i}`);
    const created = Date.now();
    await pool(names, 16, async (name) => void (await createCluster(api, 'fleet', name, { services: ['10.96.0.0/12'], registry: {} })));
    for (const [i, w] of workloads.entries()) {
      const url = new URL(w.url);
      ok(await api.request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/fleet/clusters/c${i}`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
      await markControlPlaneInitialized(api, 'fleet', `c${i}`);
      await putKubeconfig(api, 'fleet', `c${i}`, readFileSync(w.kubeconfig, 'utf8'));
    }
    // The frozen share: initialized, its kubeconfig pointing at a workload API server that then hangs.
    const frozenNames = names.slice(workloads.length, workloads.length + frozenCount);
    await pool(frozenNames, 16, async (name) => {
      const url = new URL(frozen!.url);
      ok(await api.request('PATCH', `/apis/cluster.x-k8s.io/v1beta2/namespaces/fleet/clusters/${name}`, JSON.stringify({ spec: { controlPlaneEndpoint: { host: url.hostname, port: Number(url.port) } } }), 'application/merge-patch+json'), 'endpoint');
      await markControlPlaneInitialized(api, 'fleet', name);
      await putKubeconfig(api, 'fleet', name, readFileSync(frozen!.kubeconfig, 'utf8'));
    });
    frozen?.freeze(true);
    const createMs = Date.now() - created;
    const kubeconfig = await extensionKubeconfig(api, 'capi-registry-addon', { providerNamespaces: [PROVIDER] });
    const started = Date.now();
    for (const runtime of RUNTIMES) {
      // FLEET_ENV="K=V K=V" for the replicas (or "K=V;K=V" when a value has spaces), e.g. MALLOC_ARENA_MAX=2:
      // to see which part of the RSS is uncollected garbage and which is the C allocator's arenas.
      const env = process.env.FLEET_ENV ? Object.fromEntries(process.env.FLEET_ENV.split(process.env.FLEET_ENV.includes(';') ? ';' : ' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) : undefined;
      replicas.push(await startExtension(runtime, { args: ['--kubeconfig', kubeconfig, '--provider-namespace', PROVIDER, '--mint-root-ca', '--converge-interval', String(INTERVAL_S)], ...(env ? { env } : {}) }));
    }
    const converged = async () => {
      const secrets = (await api.request('GET', '/api/v1/namespaces/fleet/secrets?labelSelector=cluster.x-k8s.io/cluster-name')).body?.items ?? [];
      const push = secrets.filter((s: any) => s.metadata.name.endsWith('-registry-addon-push')).length;
      const proxies = (await api.request('GET', '/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/fleet/helmchartproxies')).body?.items?.length ?? 0;
      return { push, proxies };
    };
    // Progress on stderr (stdout carries the results): a run that does not converge says how far it got.
    let lastSaid = 0;
    await waitFor(`${n} Clusters converged`, async () => {
      const c = await converged();
      if (Date.now() - lastSaid > 60_000) {
        lastSaid = Date.now();
        console.error(`fleet ${n}/${frozenPercent}%: ${c.push} of ${n} Clusters prepared, ${c.proxies} of ${workloads.length} registries deployed after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
      return c.push === n && c.proxies === workloads.length ? true : undefined;
    }, 30 * 60_000);
    const convergeMs = Date.now() - started;
    // Steady state: two whole intervals after everything converged.
    await sleep(INTERVAL_S * 1000);
    const t0 = new Date().toISOString();
    await sleep(2 * INTERVAL_S * 1000);
    const t1 = new Date().toISOString();
    const window = (e: AuditEvent) => e.stageTimestamp > t0 && e.stageTimestamp < t1 && ours(e);
    const isLease = (e: AuditEvent) => e.objectRef?.resource === 'leases';
    const all = api.audit().filter(window);
    const mgmt = all.filter((e) => !isLease(e));
    const work = workloads.flatMap((w) => w.audit()).filter(window);
    const passes = 2 * n; // the replicas share the Clusters: one pass over each per interval
    // Put back at once: c0's CA copy and HelmChartProxy deleted, timed until they exist again.
    const putBack = async (path: string) => {
      ok(await api.request('DELETE', path), `delete ${path}`);
      const t = Date.now();
      await waitFor(`${path} put back`, async () => ((await api.request('GET', path)).status === 200 ? true : undefined), 60_000);
      return Date.now() - t;
    };
    const caCopyBackMs = await putBack('/api/v1/namespaces/fleet/secrets/c0-registry-addon-ca');
    const proxyBackMs = await putBack('/apis/addons.cluster.x-k8s.io/v1alpha1/namespaces/fleet/helmchartproxies/c0-registry');
    return {
      clusters: n,
      frozenClusters: frozenCount,
      replicas: RUNTIMES.join('+'),
      intervalSeconds: INTERVAL_S,
      createSeconds: +(createMs / 1000).toFixed(1),
      convergeSeconds: +(convergeMs / 1000).toFixed(1),
      managementRequestsPerClusterPerInterval: +(mgmt.length / (2 * n)).toFixed(2),
      managementWrites: mgmt.filter((e) => WRITE_VERBS.has(e.verb)).length,
      /** What was written, for a run that wrote in steady state (at most 10). */
      managementWritten: mgmt.filter((e) => WRITE_VERBS.has(e.verb)).slice(0, 10).map((e) => `${e.verb} ${e.requestURI}`),
      leaseWritesPerReplicaPerMinute: +(all.filter((e) => isLease(e) && WRITE_VERBS.has(e.verb)).length / replicas.length / ((2 * INTERVAL_S) / 60)).toFixed(1),
      workloadRequestsPerInitializedClusterPerInterval: +(work.length / (2 * workloads.length)).toFixed(2),
      workloadWrites: work.filter((e) => WRITE_VERBS.has(e.verb)).length,
      requestsPerPass: +((mgmt.length + work.length) / passes).toFixed(2),
      caCopyBackMs,
      proxyBackMs,
      rssMiB: replicas.map((r) => +rssMiB(r).toFixed(1)),
      /** The most each replica held at once (the first convergence included). */
      peakRssMiB: replicas.map((r) => +statusMiB(r, 'VmHWM').toFixed(1)),
      smapsMiB: replicas.map(smapsBreakdown),
      memoryMiB: await Promise.all(replicas.map(async (r) => {
        const text = (await r.request('GET', '/metrics', undefined, false)).text;
        return Object.fromEntries([...text.matchAll(/capi_registry_addon_process_memory_bytes\{kind="(\w+)"\} (\d+)/g)].map((m) => [m[1], +(Number(m[2]) / 1048576).toFixed(1)]));
      })),
    };
  } finally {
    for (const r of replicas) await r.stop();
    for (const w of workloads.slice(1)) await w.stop();
    await frozen?.stop();
    await env.stop();
  }
}

for (const n of SIZES) for (const f of FROZEN) console.log(JSON.stringify(await measure(n, f)));
process.exit(0);
