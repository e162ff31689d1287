// `npm run bench:fleet`: the extension at fleet scale (test/bench/fleet.ts) against a real management
// API server: time to converge N Clusters after two replicas start, API requests per Cluster per
// interval in steady state (and how many are writes), RSS per replica; each size also with a share of
// the Clusters behind a frozen workload API server. FLEET_SIZES=100,1000 (default), FLEET_FROZEN=0,5
// (percent), FLEET_RUNTIMES=node,node, FLEET_INTERVAL_SECONDS=30, FLEET_ENV="K=V ..." for the replicas.
// Needs the built bundle and the components.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const ROOT = process.cwd();
const out = join(ROOT, '.cache', 'bench', 'fleet.mjs');
mkdirSync(join(ROOT, '.cache', 'bench'), { recursive: true });
await build({
  entryPoints: [join(ROOT, 'test', 'bench', 'fleet.ts')], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'es2023',
  loader: { '.wasm': 'binary', '.tgz': 'binary', '.jstext': 'text', '.sh': 'text' }, packages: 'external', logLevel: 'warning',
});
const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'node'), [out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 });
if (r.status !== 0) throw new Error(`fleet bench failed (exit ${r.status})`);
const rows = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
console.log('\nfleet: two replicas start with N opted-in Clusters in the management API server (3 initialized, each with its own workload API server)');
const cols = ['clusters', 'frozenClusters', 'convergeSeconds', 'managementRequestsPerClusterPerInterval', 'managementWrites', 'workloadRequestsPerInitializedClusterPerInterval', 'workloadWrites', 'leaseWritesPerReplicaPerMinute', 'caCopyBackMs', 'proxyBackMs', 'rssMiB', 'peakRssMiB'];
console.log(`| ${cols.join(' | ')} |`);
console.log(`|${cols.map(() => ' --- ').join('|')}|`);
for (const row of rows) console.log(`| ${cols.map((c) => (Array.isArray(row[c]) ? row[c].join(' / ') : row[c])).join(' | ')} |`);
const pairs = (m) => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ');
for (const row of rows) {
  console.log(`memory at ${row.clusters} Clusters, ${row.frozenClusters} frozen (MiB, per replica): ${row.memoryMiB.map(pairs).join(' | ')}`);
  console.log(`  where the RSS is (smaps): ${row.smapsMiB.map(pairs).join(' | ')}`);
  if (row.managementWritten?.length) console.log(`  written in steady state: ${row.managementWritten.join(', ')}`);
}
for (const row of rows.filter((r) => r.frozenClusters > 0)) {
  const base = rows.find((r) => r.clusters === row.clusters && r.frozenClusters === 0);
  if (base) console.log(`${row.frozenClusters} of ${row.clusters} Clusters frozen: the others converged in ${row.convergeSeconds} s against ${base.convergeSeconds} s with none (${(row.convergeSeconds / base.convergeSeconds).toFixed(2)}x)`);
}
const healthy = rows.filter((r) => r.frozenClusters === 0);
if (healthy.length > 1) {
  const [a, b] = [healthy[0], healthy.at(-1)];
  const perK = (row) => row.rssMiB.reduce((x, y) => x + y, 0) / row.rssMiB.length;
  console.log(`RSS per replica: ${perK(a).toFixed(0)} MiB at ${a.clusters}, ${perK(b).toFixed(0)} MiB at ${b.clusters} (+${((perK(b) - perK(a)) / ((b.clusters - a.clusters) / 1000)).toFixed(1)} MiB per 1,000 Clusters); converge time ratio ${(b.convergeSeconds / a.convergeSeconds).toFixed(1)}x for ${(b.clusters / a.clusters).toFixed(0)}x the Clusters`);
}
