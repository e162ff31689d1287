// Adapter on Bun.serve. Bun cannot change the certificate of a listening server, so a reload starts
// a second server on the same port (SO_REUSEPORT) and lets the first one finish its requests.
import { readFileSync } from 'node:fs';
import { bodyDrainLimit } from '../runtime-sdk/body.ts';
import type { Adapter, ServeOptions } from './adapter.ts';

/** OpenSSL's SSL_OP_NO_TLSv1 and SSL_OP_NO_TLSv1_1: TLS 1.2 is the least version served, as on Node and Deno. */
const SSL_OP_NO_TLSv1 = 0x04000000;
const SSL_OP_NO_TLSv1_1 = 0x10000000;

interface BunServer { port: number; stop(closeActive?: boolean): Promise<void> | void }
interface BunGlobal { serve(options: Record<string, unknown>): BunServer }

/**
 * Linux resets connections still queued on a closing SO_REUSEPORT listener unless
 * net.ipv4.tcp_migrate_req=1 hands them to the new one. Returns a warning when it is off.
 */
function reloadWarning(): string | undefined {
  try {
    if (readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1') return undefined;
  } catch {
    return undefined; // not Linux, or no /proc: nothing to say
  }
  return 'on Bun a certificate reload may reset connections queued at that instant: set the sysctl net.ipv4.tcp_migrate_req=1 (or run on Node or Deno)';
}

export const serveBun: Adapter = async (opts) => {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  const start = (tls: ServeOptions['tls'], port: number) =>
    bun.serve({
      hostname: opts.hostname,
      port,
      reusePort: true,
      // Bun has no minVersion; without these OpenSSL options it accepts TLS 1.0 and 1.1 (seen with openssl s_client).
      tls: { cert: tls.certPem, key: tls.keyPem, secureOptions: SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 },
      // Let oversized bodies reach the hook wrapper, which answers them with a Failure (not a 413).
      maxRequestBodySize: bodyDrainLimit(opts.maxBodyBytes) + 1024 * 1024,
      fetch: opts.fetch,
    });
  let current = start(opts.tls, opts.port);
  const port = current.port;
  return {
    runtime: 'bun',
    port,
    warning: reloadWarning(),
    async reloadTls(tls) {
      const next = start(tls, port);
      const previous = current;
      current = next;
      await previous.stop(false);
    },
    async close(graceMs) {
      await Promise.race([current.stop(false), new Promise((r) => setTimeout(r, graceMs))]);
      await current.stop(true);
    },
  };
};
