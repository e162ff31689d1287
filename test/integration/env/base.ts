// Shared plumbing of the real test environment: one temp folder, processes started by pid and
// stopped by pid, free loopback ports, waiting, and openssl.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
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

/** Every process this run started and has not seen exit, with the order it was started in. */
const started = new Map<ChildProcess, number>();
let startCount = 0;

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
  started.set(proc, ++startCount);
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

/** A mark in the order of starts: stopStartedSince(mark) ends what was started after it. */
export const startMark = (): number => startCount;

/**
 * SIGKILLs every process started after `mark` that still runs, and resolves once each has exited. An
 * environment that did not start calls this (through realSuite), so a half-started etcd or API server
 * neither keeps the test process alive nor outlives its suite.
 */
export async function stopStartedSince(mark: number): Promise<number> {
  const victims = [...started].filter(([, n]) => n > mark).map(([p]) => p);
  await Promise.all(victims.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
  return victims.length;
}

/** How many processes this run started are still running. */
export const runningProcesses = (): number => started.size;

/** Ends every process this run started (by pid) and removes the temp folder; runs at exit. */
export function cleanup(): void {
  for (const p of started.keys()) p.kill('SIGKILL');
  rmSync(WORK, { recursive: true, force: true });
}
process.once('exit', () => (process.env.KEEP_TEST_WORK ? undefined : cleanup()));
// A signal ends the process without 'exit': turned into an exit, so every cleanup above and in the
// environment (nodes, their containers, network namespaces) still runs.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15)));

/** Ports outside the kernel's ephemeral band, never handed out twice in one run: scripts/lib/ports.mjs. */
export { freePort } from '../../../scripts/lib/ports.mjs';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown by a `waitFor` check when waiting longer cannot help (the process it waits for has exited). */
export class StopWaiting extends Error {}

/**
 * Polls `check` until it returns a value (not undefined) or the deadline passes. A check that throws
 * StopWaiting ends the wait at once, with the log's last lines.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, logFile?: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  const tail = () => (logFile ? spawnSync('tail', ['-n', '20', logFile], { encoding: 'utf8' }).stdout : '');
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof StopWaiting) {
        const log = tail();
        throw new Error(`${err.message} while waiting for ${what}${log ? `\n--- ${logFile}\n${log}` : ''}`);
      }
      last = err;
    }
    if (Date.now() > end) {
      const log = tail();
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${log ? `\n--- ${logFile}\n${log}` : ''}`);
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
