// `npm run bench:node` (and the end of `npm run bench`): the bootstrap penalty of a new node whose
// mirror drops packets, per containerd version, without and with the node script's fast-fail rule,
// measured in the same run (test/bench/node-penalty.ts). Needs root and the built components.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const ROOT = process.cwd();
export async function benchNodePenalty() {
  const out = join(ROOT, '.cache', 'bench', 'node-penalty.mjs');
  mkdirSync(join(ROOT, '.cache', 'bench'), { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'test', 'bench', 'node-penalty.ts')], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'es2023',
    loader: { '.wasm': 'binary', '.tgz': 'binary', '.jstext': 'text', '.sh': 'text' },
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }, logLevel: 'warning',
  });
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'node'), [out], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`node-penalty bench failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

export function printNodePenalty(rows) {
  console.log('\nbootstrap penalty: one image pulled through the CRI (crictl) on a new node whose mirror Service IP drops packets, seconds per pull');
  const versions = [...new Set(rows.map((r) => r.version))];
  const cell = (v, mode) => {
    const r = rows.find((x) => x.version === v && x.mode === mode);
    return r ? `${(r.ms / 1000).toFixed(1)} s${r.ok ? '' : ' (failed)'}` : '';
  };
  const table = versions.map((v) => [v, cell(v, 'dial timeout only'), cell(v, 'with fast-fail')]);
  const header = ['containerd', 'dial timeout only (before)', 'with the fast-fail rule (after)'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
}

if (import.meta.url === `file://${process.argv[1]}`) printNodePenalty(await benchNodePenalty());
