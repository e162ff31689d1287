// A private containerd (Debian's package) with its own root, state and socket, used the way the CRI
// uses it for image pulls: `ctr content fetch --hosts-dir` reads hosts.toml exactly like the CRI's
// config_path does.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { components } from './components.ts';
import { startProcess, waitFor, workDir, type Started } from './base.ts';

export class Containerd {
  constructor(readonly socket: string, readonly dir: string, private process: Started) {}
  get logFile() {
    return this.process.logFile;
  }
  /** Fetches `ref` (all content) using the hosts.toml tree under `hostsDir`. */
  fetch(ref: string, hostsDir: string, timeoutMs = 60_000) {
    // The resolver runs in ctr (as in the CRI plugin's process), so it gets the node's trust too.
    const r = spawnSync(components().containerd.ctr, ['--address', this.socket, 'content', 'fetch', '--hosts-dir', hostsDir, ref], {
      encoding: 'utf8',
      timeout: timeoutMs,
      env: { PATH: process.env.PATH ?? '', SSL_CERT_FILE: join(this.dir, 'system-ca.pem') },
    });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  }
  /** Digests of the content blobs containerd holds. */
  content(): string[] {
    const r = spawnSync(components().containerd.ctr, ['--address', this.socket, 'content', 'ls', '-q'], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean);
  }
  stop() {
    return this.process.stop();
  }
}

/** `systemCa` joins the node's system trust (SSL_CERT_FILE, which Go honours), as a node image's CA bundle would. */
export async function startContainerd(name: string, opts: { systemCa?: string } = {}): Promise<Containerd> {
  const dir = workDir('containerd', name);
  const bundle = join(dir, 'system-ca.pem');
  const system = existsSync('/etc/ssl/certs/ca-certificates.crt') ? readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8') : '';
  writeFileSync(bundle, `${system}\n${opts.systemCa ?? ''}`);
  const socket = join(dir, 'containerd.sock');
  writeFileSync(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    // Only the content store and image metadata are used; plugins that need a real node are off.
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '[grpc]', `  address = "${socket}"`,
    '[ttrpc]', `  address = "${socket}.ttrpc"`,
    '[debug]', `  address = "${join(dir, 'debug.sock')}"`, '  level = "debug"',
  ].join('\n'));
  const proc = startProcess(`containerd-${name}`, components().containerd.path, ['--config', join(dir, 'config.toml')], {
    env: { PATH: process.env.PATH ?? '', SSL_CERT_FILE: bundle },
  });
  await waitFor(`containerd ${name}`, async () => (existsSync(socket) ? true : undefined), 20_000, proc.logFile);
  return new Containerd(socket, dir, proc);
}
