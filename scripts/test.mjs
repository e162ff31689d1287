// The test command (`npm test`): typecheck, build the bundle, run the unit suites on Node (LTS), Deno
// and Bun, then the integration suites (which start the bundle on all three runtimes over TLS).
// Prints one closing line "N passed, M failed". A missing runtime fails the run; nothing is skipped.
import { build } from 'esbuild';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();
const bin = (name) => join(root, 'node_modules', '.bin', name);
const args = new Set(process.argv.slice(2));
const only = [...args].find((a) => a.startsWith('--only='))?.slice(7); // unit | integration
const suiteFilter = [...args].find((a) => a.startsWith('--suite='))?.slice(8); // e.g. --suite=lifecycle (a file name part)

export const RUNTIMES = {
  node: [bin('node')],
  deno: [bin('deno'), 'run', '--allow-all', '--quiet'],
  bun: [bin('bun')],
};

function need(cond, what) {
  if (!cond) {
    console.error(`test: ${what}`);
    process.exit(1);
  }
}

for (const [name, [exe]] of Object.entries(RUNTIMES)) need(existsSync(exe), `runtime ${name} is missing at ${exe}: run 'npm ci'`);
const nodeMajor = Number(spawnSync(RUNTIMES.node[0], ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout.trim());
need(nodeMajor >= 22, `node_modules/.bin/node is Node ${nodeMajor}; a supported LTS (>= 22) is required: run 'npm ci'`);

// A step runs in a process group of its own. When it passes its time limit, the whole group is killed
// (a `go build` started by components.sh, servers a suite left running), and the run says which step
// it was and why, instead of a CI run that hangs or leaves orphans.
const MINUTE = 60_000;
// TEST_STEP_MINUTES / COMPONENTS_STEP_MINUTES override the limits (e.g. to see the watchdog work).
const STEP_MS = Number(process.env.TEST_STEP_MINUTES ?? 25) * MINUTE;
const COMPONENTS_MS = Number(process.env.COMPONENTS_STEP_MINUTES ?? 80) * MINUTE;
const step = (title, cmd, argv, { env = {}, timeoutMs = STEP_MS } = {}) =>
  new Promise((resolve) => {
    console.log(`\n=== ${title}`);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env }, detached: true });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      process.stdout.write(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.log(`\n!!! ${title}: still running after ${timeoutMs / MINUTE} min: killing its process group (${cmd} ${argv.slice(-1)[0] ?? ''})`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      // Whatever it started and left behind goes with it.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      resolve({ status: timedOut ? null : status, signal, stdout, timedOut });
    });
  });

const ansi = /\x1b\[[0-9;]*m/g;
const totals = { passed: 0, failed: 0, skipped: 0 };
function count(title, r) {
  const out = (r.stdout ?? '').replace(ansi, '');
  const num = (label) => Number(out.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'))?.[1] ?? NaN);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') || 0;
  if (!Number.isFinite(total) || !Number.isFinite(passed)) {
    console.log(`!!! ${title}: no uvu summary (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})`);
    totals.failed += 1;
    return;
  }
  const failed = total - passed - skipped + (r.status === 0 ? 0 : passed === total ? 1 : 0);
  totals.passed += passed;
  totals.failed += failed;
  totals.skipped += skipped;
}

const outdir = join(root, '.cache', 'test');
mkdirSync(outdir, { recursive: true });
const suiteFiles = (kind) => readdirSync(join(root, 'test', kind)).filter((f) => f.endsWith('.test.ts') && (!suiteFilter || f.includes(suiteFilter))).sort();
async function bundleSuite(kind, files = suiteFiles(kind)) {
  const dir = join(root, 'test', kind);
  const outfile = join(outdir, files.length === 1 ? files[0].replace(/\.ts$/, '.mjs') : `${kind}.mjs`);
  await build({
    stdin: { contents: files.map((f) => `import './${f}';`).join('\n'), resolveDir: dir, sourcefile: `${kind}-suites.ts`, loader: 'ts' },
    outfile,
    bundle: true,
    loader: { '.wasm': 'binary', '.tgz': 'binary', '.jstext': 'text', '.sh': 'text' },
    platform: 'node',
    format: 'esm',
    target: 'es2023',
    sourcemap: 'inline',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
}

const tsc = await step('typecheck (tsc --noEmit)', bin('tsc'), ['--noEmit', '-p', '.']);
if (tsc.status !== 0) totals.failed += 1;
const built = await step('build (npm run build)', RUNTIMES.node[0], ['scripts/build.mjs']);
const pictures = await step('README pictures in step with their source (scripts/diagrams.mjs --check)', RUNTIMES.node[0], ['scripts/diagrams.mjs', '--check']);
if (pictures.status !== 0) totals.failed += 1;
need(built.status === 0, 'the bundle did not build');

if (only !== 'integration') {
  const unit = await bundleSuite('unit');
  for (const [name, cmd] of Object.entries(RUNTIMES)) {
    count(`unit on ${name}`, await step(`unit suites on ${name}`, cmd[0], [...cmd.slice(1), unit]));
  }
}
if (only !== 'unit') {
  // The real components (kube-apiserver, etcd, Distribution, regsync, containerd, CRD sources):
  // built or installed on first use, cached per machine afterwards. A cold build of all of them took
  // about 15 min here (README, Testing); the limit leaves room for a busy machine.
  const env = await step('real components (scripts/components.sh)', 'bash', ['scripts/components.sh'], { timeoutMs: COMPONENTS_MS });
  need(env.status === 0, `the real test components could not be brought up${env.timedOut ? ' in time' : ''} (see above); the integration suites need them`);
  // The node script is a real file: shellcheck (Debian's, installed by components.sh) reads it as POSIX sh.
  const shellcheck = await step('shellcheck src/render/node/*.sh', 'sh', ['-c', 'shellcheck -s sh src/render/node/*.sh']);
  if (shellcheck.status !== 0) totals.failed += 1;
  else totals.passed += 1;
  // One process per suite: a suite whose environment does not start fails alone, with its cause, and
  // the others still run.
  for (const file of suiteFiles('integration')) {
    const bundle = await bundleSuite('integration', [file]);
    count(`integration ${file}`, await step(`integration ${file} (driver on Node; servers on Node, Deno, Bun)`, RUNTIMES.node[0], [bundle]));
  }
}

console.log(`\n${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
process.exit(totals.failed === 0 ? 0 : 1);
