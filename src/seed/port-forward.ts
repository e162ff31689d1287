// A port of a workload pod on this host's loopback, through the workload API server (pods/portforward):
// one WebSocket per local TCP connection, the v4.channel.k8s.io framing (channel byte; the first frame
// of each channel carries the port, uint16 little-endian; channel 1 reports errors as text). Our own
// bridge rather than client-node's PortForward, which has no backpressure (a fast writer buffers a
// whole blob), never closes the local socket when the WebSocket closes, and drops the error channel
// (what the project gathered on seed transport). It needs only API server -> kubelet, the path `kubectl
// logs` takes, and TLS to the registry stays end to end inside the tunnel.
import net from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { clientNode } from '../kube/client-node.ts';

/** Bytes sent but not yet handed to the network before the local socket is paused. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

export interface Forwarded {
  port: number;
  /** The error channel's last words (a pod not running, a port closed), if any. */
  lastError(): string | undefined;
  close(): Promise<void>;
}

type Socket = { send(data: Buffer, cb: (err?: Error) => void): void; close(): void; readyState: number; on(event: string, fn: (...args: unknown[]) => void): void };

/** ws reports a failed handshake as an event whose `error` or `message` says why. */
const describe = (err: unknown): string => {
  if (err instanceof Error) return err.message;
  const e = err as { error?: unknown; message?: unknown } | undefined;
  if (e?.error instanceof Error) return e.error.message;
  return typeof e?.message === 'string' && e.message ? e.message : String(err);
};

export async function forwardPort(kc: KubeConfig, namespace: string, pod: string, remotePort: number): Promise<Forwarded> {
  const { WebSocketHandler } = clientNode();
  const handler = new WebSocketHandler(kc);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/portforward?ports=${remotePort}`;
  let lastError: string | undefined;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((local) => {
    sockets.add(local);
    local.pause();
    let ws: Socket | undefined;
    // The client side sees the failure as a closed connection; the reason is kept for its message.
    local.on('error', () => ws?.close());
    local.on('close', () => {
      sockets.delete(local);
      ws?.close();
    });
    const seen = [false, false];
    const fail = (err: Error) => {
      lastError ??= err.message;
      local.destroy(err);
      ws?.close();
    };
    handler.connect(path, null, (channel, data) => {
      // The first frame on each channel is its port number.
      const body = seen[channel] ? data : data.subarray(2);
      seen[channel] = true;
      if (channel === 0) {
        if (body.length) local.write(body);
      } else if (channel === 1 && body.length) {
        fail(new Error(`port-forward to ${namespace}/${pod}:${remotePort}: ${body.toString('utf8').trim()}`));
        return false;
      }
      return true;
    }).then((socket) => {
      ws = socket as unknown as Socket;
      ws.on('close', () => local.destroy());
      ws.on('error', (err) => fail(new Error(describe(err))));
      let pending = 0;
      local.on('data', (chunk: Buffer) => {
        pending += chunk.length;
        if (pending > HIGH_WATER) local.pause();
        ws!.send(Buffer.concat([Buffer.from([0]), chunk]), (err) => {
          pending -= chunk.length;
          if (err) return fail(err);
          if (pending < LOW_WATER && local.isPaused()) local.resume();
        });
      });
      if (local.destroyed) ws.close();
      else local.resume();
    }, (err: unknown) => fail(new Error(`port-forward to ${namespace}/${pod}:${remotePort} refused: ${describe(err)}`)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    lastError: () => lastError,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
