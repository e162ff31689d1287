// Shared plumbing of the real test environment: one temp folder, processes started by pid and
// stopped by pid, free loopback ports, waiting, and openssl.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = process.cwd();

/** One temp folder for the whole run; everything the environment writes goes below it. */
export const WORK = mkdtempSync(join(tmpdir(), 'capi-registry-addon-test-'));

export function workDir(...parts: string[]): string {
  const dir = join(WORK, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const started = new Set<ChildProcess>();

export interface Started {
  proc: ChildProcess;
  logFile: string;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts a process whose output goes to a log file under WORK; remembered so cleanup() can end it.
 * The file is the process's own stdout/stderr, not a pipe through this process: a test that blocks in
 * spawnSync (crictl, openssl) would otherwise stop draining the pipe, and a chatty server (containerd
 * at debug level) would block on its next log line. `pipe: true` keeps pipes for callers that read them.
 */
export function startProcess(name: string, cmd: string, args: string[], opts: SpawnOptions & { pipe?: boolean } = {}): Started {
  const logFile = join(workDir('logs'), `${name}.log`);
  const { pipe, ...spawnOpts } = opts;
  let proc: ChildProcess;
  if (pipe) {
    const log = createWriteStream(logFile);
    proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
  } else {
    const fd = openSync(logFile, 'a');
    proc = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...spawnOpts });
    closeSync(fd);
  }
  started.add(proc);
  proc.once('exit', () => started.delete(proc));

  return {
    proc,
    logFile,
    stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
      return new Promise((resolve) => {
        const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        proc.once('exit', (code) => {
          clearTimeout(kill);
          resolve(code);
        });
        proc.kill('SIGTERM');
      });
    },
  };
}

/** Ends every process this run started (by pid) and removes the temp folder; runs at exit. */
export function cleanup(): void {
  for (const p of started) p.kill('SIGKILL');
  rmSync(WORK, { recursive: true, force: true });
}
process.once('exit', () => (process.env.KEEP_TEST_WORK ? undefined : cleanup()));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, logFile?: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const tail = logFile ? spawnSync('tail', ['-n', '20', logFile], { encoding: 'utf8' }).stdout : '';
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${tail ? `\n--- ${logFile}\n${tail}` : ''}`);
    }
    await sleep(100);
  }
}

export function openssl(args: string[], cwd = WORK): string {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is not installed (${r.error.message}): the integration tests need it (Debian: openssl)`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * Wraps a command so it runs in a private mount namespace (unshare -m, as root) where each
 * [source, target] bind is in place: the process sees files at the exact paths a pod or a node would,
 * so rendered configs are used verbatim; nothing outside the namespace changes.
 */
export function inMountNamespace(binds: [string, string][], cmd: string, args: string[]): [string, string[]] {
  const script = `${binds.map((_, i) => `mount --bind "$${2 * i + 1}" "$${2 * i + 2}"`).join(' && ')} && shift ${binds.length * 2} && exec "$@"`;
  return ['unshare', ['-m', 'sh', '-c', script, 'sh', ...binds.flat(), cmd, ...args]];
}
