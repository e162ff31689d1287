// A node as the kubelet sees it: one containerd build with the CRI plugin loaded, its config and hosts
// files at the real paths (/etc/containerd, /var/lib/containerd, /run/containerd bound in a private
// mount namespace), images pulled through the CRI with crictl — the kubelet's door, not ctr's. Upstream
// registry names resolve (the node's /etc/hosts) to 127.0.0.1, where nothing listens on 443 unless the
// test starts an upstream: a pull that skips the mirror fails.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE } from '../../../src/render/metadata.ts';
import { startProcess, StopWaiting, waitFor, workDir, type Started } from './base.ts';
import { components } from './components.ts';

export const UPSTREAM_NAMES = ['docker.io', 'registry-1.docker.io', 'quay.io'];

/** A network namespace of the test's own (ip netns), removed by `remove()`. */
export class NetNs {
  private constructor(readonly name: string) {}
  static create(name: string, setup: string[][] = []): NetNs {
    const ns = new NetNs(name);
    spawnSync('ip', ['netns', 'del', name]);
    for (const args of [['netns', 'add', name], ['-n', name, 'link', 'set', 'lo', 'up'], ...setup.map((a) => ['-n', name, ...a])]) {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    }
    return ns;
  }
  /** `cmd args` run inside the namespace. */
  wrap(cmd: string, args: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.name, cmd, ...args]];
  }
  remove(): void {
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

export interface NodeOptions {
  /** The containerd binary (one of components().containerdMatrix). */
  containerd: string;
  /** /etc/containerd/config.toml as the node image ships it (undefined: none, the script writes `config default`). */
  config?: string;
  /** Extra files under /etc/containerd (relative path -> content), e.g. another patch's certs.d/_default/hosts.toml. */
  files?: Record<string, string>;
  /** Run inside this network namespace (default: a private one per command for the script, the host's for containerd). */
  netns?: NetNs;
  /** PEM added to the node's system trust (SSL_CERT_FILE), for a TLS upstream. */
  systemCa?: string;
  /** The node's /etc/kubernetes (kubeadm's kubelet.conf) and a kubectl on its PATH, as a joined node has them. */
  kubernetes?: { dir: string; kubectl: string };
}

export class TestNode {
  readonly etc: string;
  readonly socket: string;
  private proc?: Started;
  constructor(readonly dir: string, readonly opts: NodeOptions) {
    this.etc = join(dir, 'etc-containerd');
    this.socket = join(dir, 'run', 'containerd.sock');
    for (const d of ['etc-containerd', 'var-lib', 'run', 'bin']) mkdirSync(join(dir, d), { recursive: true });
    if (opts.config !== undefined) writeFileSync(join(this.etc, 'config.toml'), opts.config);
    for (const [path, content] of Object.entries(opts.files ?? {})) {
      mkdirSync(join(this.etc, path, '..'), { recursive: true });
      writeFileSync(join(this.etc, path), content);
    }
    writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost ${UPSTREAM_NAMES.join(' ')}\n`);
    // The node's PATH has its own containerd: the script asks it for its version and checks its edit with it.
    copyFileSync(opts.containerd, join(dir, 'bin', 'containerd'));
    chmodSync(join(dir, 'bin', 'containerd'), 0o755);
    if (opts.kubernetes) copyFileSync(opts.kubernetes.kubectl, join(dir, 'bin', 'kubectl'));
    const system = existsSync('/etc/ssl/certs/ca-certificates.crt') ? readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8') : '';
    writeFileSync(join(dir, 'system-ca.pem'), `${system}\n${opts.systemCa ?? ''}`);
  }

  /** Writes the files kubeadm would (our directory under /etc/containerd). */
  writeAddonFiles(files: { hostsToml: string; ca: string; script: string }): void {
    const dir = join(this.etc, NODE.addonDir.replace('/etc/containerd/', ''));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'hosts.toml'), files.hostsToml, { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), files.ca);
    writeFileSync(join(dir, 'enable-mirror.sh'), files.script, { mode: 0o755 });
  }

  /** The binds that put the node's files at the real paths. */
  private mounts(): string {
    const binds: [string, string][] = [[this.etc, '/etc/containerd'], [join(this.dir, 'var-lib'), '/var/lib/containerd'], [join(this.dir, 'run'), '/run/containerd'], [join(this.dir, 'hosts'), '/etc/hosts']];
    if (this.opts.kubernetes) binds.push([this.opts.kubernetes.dir, '/etc/kubernetes']);
    return binds.map(([from, to]) => `mkdir -p ${to} 2>/dev/null; mount --bind ${from} ${to}`).join(' && ');
  }

  /**
   * `cmd` inside the node's mount namespace, in the test's network namespace when there is one; else in
   * the machine's (containerd, to reach the mirror on loopback) or, with `isolate`, a fresh empty one (the
   * script: its iptables rule must not land on this machine).
   */
  private command(cmd: string, isolate = false): [string, string[]] {
    const inner = ['-m', 'sh', '-c', `${this.mounts()} && exec ${cmd}`];
    if (this.opts.netns) return this.opts.netns.wrap('unshare', inner);
    return ['unshare', isolate ? ['-n', ...inner] : inner];
  }

  /** `argv` in the node's mount namespace (e.g. ctr, whose client mounts snapshots under /var/lib/containerd). */
  inNode(argv: string[]): [string, string[]] {
    return this.command(argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '));
  }

  /**
   * Runs the node-side script as preKubeadmCommands would (no systemd here: the test restarts containerd).
   * With `runner`, inside a runner as Ignition and cloud-init write one: `set -e`, `setup` (commands that
   * shape the node first, e.g. a read-only directory), the script, then `after` (which sees the node as
   * the script left it, in the same mount namespace), each line a command.
   */
  runScript(runner?: { setup?: string; after?: string; args?: string }): { status: number | null; stdout: string; stderr: string; statusFile: Record<string, string> } {
    let line = `sh ${NODE.enableScript} --no-restart`;
    if (runner) {
      const file = join(this.dir, 'runner.sh');
      writeFileSync(file, `set -e\n${runner.setup ?? ''}\n${line} ${runner.args ?? ''}\necho "runner: the next command runs"\n${runner.after ?? ''}\n`);
      line = `sh ${file}`;
    }
    const [cmd, args] = this.command(line, true);
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: `${join(this.dir, 'bin')}:${process.env.PATH}` }, timeout: 60_000 });
    const statusPath = join(this.etc, NODE.statusFile.replace('/etc/containerd/', ''));
    const statusFile = existsSync(statusPath) ? Object.fromEntries(readFileSync(statusPath, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) : {};
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, statusFile };
  }

  /** The script's `report`, as postKubeadmCommands runs it once the node has joined (the API server on this machine's loopback). */
  runReport(): { status: number | null; stderr: string } {
    const [cmd, args] = this.command(`sh ${NODE.enableScript} report`);
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: `${join(this.dir, 'bin')}:${process.env.PATH}` }, timeout: 120_000 });
    return { status: r.status, stderr: r.stderr };
  }

  file(path: string): string | undefined {
    const p = join(this.etc, path);
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  }

  /**
   * Starts containerd with /etc/containerd/config.toml and waits for the CRI to answer (`crictl info`),
   * or with `cri: false` only until containerd says it booted (whether its CRI loaded is then the caller's question).
   */
  async start({ cri = true } = {}): Promise<void> {
    // Debug level: the log then says which pull path and which hosts directory containerd used.
    const [cmd, args] = this.command('containerd --log-level debug');
    this.proc = startProcess(`containerd-${this.dir.split('/').slice(-2).join('-')}`, cmd, args, {
      env: { PATH: `${join(this.dir, 'bin')}:${process.env.PATH}`, SSL_CERT_FILE: join(this.dir, 'system-ca.pem') },
    });
    try {
      await waitFor(cri ? 'containerd CRI' : 'containerd booted', async () => {
        if (this.proc!.proc.exitCode !== null) throw new StopWaiting(`containerd exited ${this.proc!.proc.exitCode}`);
        if (!cri) return /containerd successfully booted/.test(this.log) ? true : undefined;
        return this.crictl(['info'], 5_000).ok ? true : undefined;
      }, 30_000, this.proc.logFile);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  get log(): string {
    return this.proc ? readFileSync(this.proc.logFile, 'utf8') : '';
  }

  crictl(args: string[], timeoutMs = 120_000): { ok: boolean; output: string; stdout: string; ms: number } {
    const started = Date.now();
    const r = spawnSync(components().crictl.path, ['--runtime-endpoint', `unix://${this.socket}`, '--image-endpoint', `unix://${this.socket}`, '--timeout', `${Math.ceil(timeoutMs / 1000)}s`, ...args], { encoding: 'utf8', timeout: timeoutMs + 5_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`, stdout: r.stdout, ms: Date.now() - started };
  }

  /** `crictl pull`: what the kubelet asks the CRI for. */
  pull(ref: string, timeoutMs?: number) {
    return this.crictl(['pull', ref], timeoutMs);
  }

  async stop(): Promise<void> {
    await this.proc?.stop(10_000);
    this.proc = undefined;
  }
}

/** A node's folder; keep names short: the CRI socket path must fit a unix socket address (108 bytes). */
export const nodeDir = (...parts: string[]) => workDir('n', ...parts);
