// What every runtime adapter provides: put a web-standard fetch handler on a TLS socket, swap the
// serving certificate without dropping connections, and close gracefully.

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
}

export interface ServeOptions {
  hostname: string;
  port: number;
  tls: TlsMaterial;
  fetch: FetchHandler;
  /** Bodies above this are cut off by the hook wrapper; the adapter must let them reach it. */
  maxBodyBytes: number;
  /** Most open connections at once (Node, Deno); Bun has no such limit, the app's in-flight cap serves there. */
  maxConnections: number;
}

export interface RunningServer {
  readonly runtime: string;
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Something the operator should know about this runtime's limits, logged once at start. */
  readonly warning?: string;
  /** Serve new connections with this certificate; throws (and keeps the old one) if it is unusable. */
  reloadTls(tls: TlsMaterial): Promise<void>;
  /** Stop accepting, let in-flight requests finish (up to graceMs), then close. */
  close(graceMs: number): Promise<void>;
}

export type Adapter = (opts: ServeOptions) => Promise<RunningServer>;
