// regbot (github.com/regclient/regclient/cmd/regbot), run as the registry pod's sync sidecar runs it:
// the rendered ConfigMap at /etc/regbot/config, the CA at /etc/regbot/ca, the credential Secret at
// /etc/regbot/auth (one file per key), cluster DNS as /etc/hosts; in the pod's network namespace.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { POD } from '../../../src/render/metadata.ts';
import { inMountNamespace, startProcess, workDir, type Started } from './base.ts';
import { components } from './components.ts';
import type { NetNs } from './node.ts';

export interface SidecarFiles {
  /** The sync ConfigMap's data (file name -> text). */
  config: Record<string, string>;
  ca: string;
  auth?: { username: string; password: string };
  /** The sources Secret (`<source>.ca.crt`, `<source>.username`, `<source>.password`), as the writer mounts it. */
  sources?: Record<string, string>;
  /** name -> address, what cluster DNS answers. */
  hosts: Record<string, string>;
}

export class SyncSidecar {
  private readonly etc: string;
  /** The pod's emptyDir at /tmp (the sources' last-pass files live there). */
  private readonly tmp: string;
  constructor(readonly pod: string, files: SidecarFiles, private readonly netns?: NetNs) {
    this.etc = workDir('sidecar', pod, 'etc');
    this.tmp = workDir('sidecar', pod, 'tmp');
    const at = (path: string) => join(this.etc, path.replace(/^\/etc\//, ''));
    for (const dir of [POD.syncConfigDir, POD.syncCaFile.replace(/\/[^/]+$/, ''), POD.syncAuthDir]) mkdirSync(at(dir), { recursive: true });
    for (const [name, text] of Object.entries(files.config)) writeFileSync(join(at(POD.syncConfigDir), name), text);
    writeFileSync(at(POD.syncCaFile), files.ca);
    for (const [key, value] of Object.entries(files.auth ?? {})) writeFileSync(join(at(POD.syncAuthDir), key), value);
    this.writeSources(files.sources ?? {});
    writeFileSync(join(this.etc, 'hosts'), `127.0.0.1 localhost\n${Object.entries(files.hosts).map(([name, ip]) => `${ip} ${name}`).join('\n')}\n`);
    writeFileSync(join(this.etc, 'nsswitch.conf'), 'hosts: files\n');
  }

  /** Empties /tmp, as a new pod finds it: every source is due at once. */
  newPod(): void {
    rmSync(this.tmp, { recursive: true, force: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  /** Replaces the mounted sources Secret (a new Secret, as the hooks write it). */
  writeSources(files: Record<string, string>): void {
    const dir = join(this.etc, POD.sourcesDir.replace(/^\/etc\//, ''));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [key, value] of Object.entries(files)) writeFileSync(join(dir, key), value);
  }

  private command(args: string[]): [string, string[]] {
    const [cmd, argv] = inMountNamespace([[this.etc, '/etc'], [this.tmp, '/tmp']], components().regbot.path, args);
    return this.netns ? this.netns.wrap(cmd, argv) : [cmd, argv];
  }

  private static env = () => ({ PATH: process.env.PATH ?? '', HOME: '/tmp' });

  /** `regbot once -c FILE` (the startup probe with ready.yml): exit 0 or not, and what it said. */
  once(file: string): { ok: boolean; output: string; ms: number } {
    const started = Date.now();
    const [cmd, args] = this.command(['once', '-c', `${POD.syncConfigDir}/${file}`, '-v', 'info']);
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, env: SyncSidecar.env() });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`, ms: Date.now() - started };
  }

  /** `once`, without blocking this process (a server of the test's own, e.g. a fault injector, must keep answering meanwhile). */
  onceAsync(file: string): Promise<{ ok: boolean; output: string; ms: number }> {
    const started = Date.now();
    const [cmd, args] = this.command(['once', '-c', `${POD.syncConfigDir}/${file}`, '-v', 'info']);
    return new Promise((resolve) => {
      const child = spawn(cmd, args, { env: SyncSidecar.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ ok: code === 0, output, ms: Date.now() - started });
      });
    });
  }

  /** The sidecar's own command: `regbot server -c <pod>.yml`. */
  server(): Started {
    const [cmd, args] = this.command(['server', '-c', `${POD.syncConfigDir}/${this.pod}.yml`, '-v', 'info']);
    return startProcess(`regbot-${this.pod}`, cmd, args, { env: SyncSidecar.env() });
  }
}
