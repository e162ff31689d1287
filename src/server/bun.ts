// Adapter on Bun.serve. Bun cannot change the certificate of a listening server, so a reload starts
// a second server on the same port (SO_REUSEPORT) and lets the first one finish its requests.
import type { Adapter, ServeOptions } from './adapter.ts';

interface BunServer { port: number; stop(closeActive?: boolean): Promise<void> | void }
interface BunGlobal { serve(options: Record<string, unknown>): BunServer }

export const serveBun: Adapter = async (opts) => {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  const start = (tls: ServeOptions['tls'], port: number) =>
    bun.serve({
      hostname: opts.hostname,
      port,
      reusePort: true,
      tls: { cert: tls.certPem, key: tls.keyPem },
      // Let oversized bodies reach the hook wrapper, which answers them with a Failure (not a 413).
      maxRequestBodySize: Math.max(opts.maxBodyBytes * 4, 64 * 1024 * 1024),
      fetch: opts.fetch,
    });
  let current = start(opts.tls, opts.port);
  const port = current.port;
  return {
    runtime: 'bun',
    port,
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
