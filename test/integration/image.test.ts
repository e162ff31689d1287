// The OCI image `npm run image` builds, run for real: imported into containerd (Debian's 1.6, with runc)
// and started as the shipped Deployment starts it: its own user 65532, a read-only root filesystem, every
// capability dropped, the default seccomp profile, the serving certificate mounted read-only where the
// Deployment mounts it. It must answer discovery and a GeneratePatches over TLS and stop on SIGTERM
// within the grace period. The build must be reproducible: the same inputs, the same digest.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { realSuite } from './env/suite.ts';
import { freePort, startProcess, waitFor, workDir, type Started } from './env/base.ts';
import { components } from './env/components.ts';
import { makePki } from './env/extension.ts';
import { nodeDir, TestNode } from './env/node.ts';
import { httpRequest } from './env/registry.ts';
import { HOOK_PATHS } from './env/capi.ts';
import { FIXTURES, HOOK_PREFIX } from '../helpers.ts';

const test = realSuite('the image, built here and run by containerd and runc as the Deployment runs it (Node, Deno and Bun variants)');
const VARIANTS = ['node', 'deno', 'bun'] as const;
type Variant = (typeof VARIANTS)[number];
const archive = (v: Variant) => `dist/image/capi-registry-addon${v === 'node' ? '' : `-${v}`}.oci.tar`;
/** What each build printed: digest and sizes. */
const built: Partial<Record<Variant, { digest: string; compressed: string; unpacked: string }>> = {};
const CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];
let node: TestNode;

const build = (v: Variant) => {
  const r = spawnSync(process.execPath, ['scripts/image.mjs', '--runtime', v], { encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, r.stderr);
  const [, digest, compressed, unpacked] = /(sha256:[0-9a-f]{64}): layer ([\d.]+ MiB) compressed, ([\d.]+ MiB) unpacked/.exec(r.stdout)!;
  built[v] = { digest: digest!, compressed: compressed!, unpacked: unpacked! };
  return digest!;
};
/** ctr in the node's mount namespace, against its containerd. */
const ctrArgv = (args: string[]) => node.inNode([components().containerd.ctr, '--address', '/run/containerd/containerd.sock', '--namespace', 'default', ...args]);
const ctr = (args: string[], timeoutMs = 120_000) => {
  const [cmd, argv] = ctrArgv(args);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
};

test.before(async () => {
  node = new TestNode(nodeDir('image'), { containerd: components().containerd.path });
  await node.start({ cri: false });
});
test.after(async () => {
  await node?.stop();
});

test('one command builds each variant, twice to the same digest; no shell, no package manager in it', () => {
  for (const v of VARIANTS) {
    const digest = build(v);
    assert.is(build(v), digest, `${v}: the same inputs, the same image digest`);
    const listing = spawnSync('tar', ['-tzf', '-'], { input: layerOf(v, digest), encoding: 'utf8', maxBuffer: 1 << 26 }).stdout.split('\n');
    for (const absent of ['bin/sh', 'usr/bin/sh', 'bin/bash', 'usr/bin/apt', 'usr/bin/dpkg']) assert.not.ok(listing.includes(absent), `${v}: ${absent}`);
    assert.ok(listing.includes(`usr/local/bin/${v}`) && listing.includes('app/capi-registry-addon.mjs'), v);
  }
});

for (const v of VARIANTS) test(`${v}: runs as the Deployment runs it: user 65532, read-only root, no capabilities; serves hooks over TLS; stops on SIGTERM`, () => runVariant(v));

async function runVariant(v: Variant) {
  const digest = built[v]!.digest;
  const imported = ctr(['images', 'import', '--all-platforms', join(process.cwd(), archive(v))]);
  assert.ok(imported.ok, imported.output);
  const pki = makePki('image');
  // As the Secret volume presents them: tls.crt and tls.key, readable by the pod's user.
  const certs = workDir('image-serving-certs');
  copyFileSync(pki.certFile, join(certs, 'tls.crt'));
  copyFileSync(pki.keyFile, join(certs, 'tls.key'));
  chmodSync(join(certs, 'tls.crt'), 0o644);
  chmodSync(join(certs, 'tls.key'), 0o644);
  const port = await freePort();
  const started = performance.now();
  // The Deployment mounts the serving certificate at the server's default path; nothing else is writable.
  const [runCmd, runArgv] = ctrArgv([
    'run', '--rm', '--net-host', '--read-only', '--seccomp',
    ...CAPS.flatMap((c) => ['--cap-drop', c]),
    '--mount', `type=bind,src=${certs},dst=/tmp/k8s-webhook-server/serving-certs,options=rbind:ro`,
    `localhost/capi-registry-addon:0.1.0${v === 'node' ? '' : `-${v}`}`, 'image-test',
    // ctr replaces the image's whole command line: the entrypoint as the image gives it, then the Deployment's args.
    ...imageConfig(v, digest).config.Entrypoint, 'serve', '--listen', `127.0.0.1:${port}`, '--no-seed',
  ]);
  const run = startProcess('image-run', runCmd, runArgv, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  let stopped: Started | undefined = run;
  try {
    const url = `https://127.0.0.1:${port}`;
    const discovery = await waitFor('discovery over TLS', async () => {
      const r = await httpRequest(`${url}${HOOK_PREFIX}/discovery`, { method: 'POST', body: wire('discovery'), ca: pki.ca, tlsName: 'localhost' }).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 60_000, run.logFile);
    const coldMs = Math.round(performance.now() - started);
    assert.match(String(discovery.body), /"handlers":\[/);
    // What CAPI v1.14 sent for an opted-in Cluster (recorded from the real manager).
    const patches = await httpRequest(`${url}${HOOK_PATHS.GeneratePatches}?timeout=10s`, { method: 'POST', body: wire('generate-patches.opted-in'), ca: pki.ca, tlsName: 'localhost' });
    assert.is(patches.status, 200);
    assert.match(String(patches.body), /"status":"Success"/);
    // The process as the kernel sees it: user 65532, no effective or permitted capabilities.
    const pid = ctr(['tasks', 'ls']).output.split('\n').find((l) => l.startsWith('image-test'))!.split(/\s+/)[1]!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^CapPrm:\s+0+$/m);
    assert.match(status, /^Seccomp:\s+2$/m, 'the default seccomp profile');
    const rssMiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
    const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')!;
    assert.match(root.split(' ')[5]!, /^ro(,|$)/, `the root filesystem is read-only: ${root}`);
    // SIGTERM: stop accepting, finish, exit 0 within the Deployment's 30 s grace period.
    const term = performance.now();
    assert.ok(ctr(['tasks', 'kill', '--signal', 'SIGTERM', 'image-test']).ok);
    const code = await new Promise<number | null>((resolve) => (run.proc.exitCode !== null ? resolve(run.proc.exitCode) : run.proc.once('exit', resolve)));
    const termMs = Math.round(performance.now() - term);
    stopped = undefined;
    assert.is(code, 0, readFileSync(run.logFile, 'utf8').slice(-2000));
    assert.ok(termMs < 30_000);
    const size = statSync(archive(v)).size;
    console.log(`  ${v} image ${digest}: layer ${built[v]!.compressed} compressed, ${built[v]!.unpacked} unpacked, ${(size / 2 ** 20).toFixed(1)} MiB archive; cold start (ctr run → first discovery answered) ${coldMs} ms; RSS after a GeneratePatches ${rssMiB.toFixed(0)} MiB; SIGTERM → exit 0 in ${termMs} ms`);
  } finally {
    if (stopped) {
      ctr(['tasks', 'kill', '--signal', 'SIGKILL', 'image-test']);
      await stopped.stop();
    }
  }
}

const wire = (name: string) => readFileSync(join(FIXTURES, 'capi', 'v1.14', `${name}.json`), 'utf8');

const blob = (v: Variant, d: string) => readFileSync(join('dist/image', v, 'oci/blobs/sha256', d.slice(7)));
const manifestOf = (v: Variant, digest: string) => JSON.parse(blob(v, digest).toString('utf8'));
/** The image's one layer (gzip), from the built layout. */
const layerOf = (v: Variant, digest: string): Buffer => blob(v, manifestOf(v, digest).layers[0].digest);
const imageConfig = (v: Variant, digest: string) => JSON.parse(blob(v, manifestOf(v, digest).config.digest).toString('utf8'));

test.run();
