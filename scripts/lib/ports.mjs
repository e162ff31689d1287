// Ports for the servers that tests and benchmarks start on this machine.
//
// A port the kernel picks (listen on 0, then close) comes from net.ipv4.ip_local_port_range, the band
// every outgoing connection's local port is also drawn from, and once closed it may be handed out
// again at once: three such calls in a row once gave a kube-apiserver the port its own etcd already
// listened on, on a fresh CI machine. So the ports here come from outside that band, are never handed
// out twice by one process, and are checked free (on every IPv4 address) when handed out. Nothing
// else on the machine picks from outside the band on its own, so a port stays ours until the server
// that was given it binds it.
import { readFileSync } from 'node:fs';
import net from 'node:net';

const FLOOR = 10_000; // below this live well-known services
const CEILING = 65_535;

/** The [low, high] band the kernel draws ephemeral ports from (Linux default when unreadable). */
export function ephemeralRange() {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low <= high) return [low, high];
  } catch {}
  return [32_768, 60_999];
}

/** The ports this process may hand out: below the ephemeral band if there is room, else above it. */
export function allocationBand([low, high] = ephemeralRange()) {
  if (low - FLOOR >= 2_000) return [FLOOR, low - 1];
  if (CEILING - high >= 2_000) return [high + 1, CEILING];
  throw new Error(`ports: net.ipv4.ip_local_port_range ${low}-${high} leaves no band of 2,000 ports outside it to allocate from`);
}

const given = new Set();
const [bandLow, bandHigh] = allocationBand();
const span = bandHigh - bandLow + 1;
// Each process starts at its own place in the band, so two processes (a suite and the fixture it
// spawns, a benchmark beside a test run) rarely even try the same port.
let next = (process.pid * 7_919) % span;

function bindable(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A port no process holds now and this process never handed out before. */
export async function freePort() {
  for (let tries = 0; tries < span; tries++) {
    const port = bandLow + (next++ % span);
    if (given.has(port)) continue;
    given.add(port); // taken or not, never tried twice
    if (await bindable(port)) return port;
  }
  throw new Error(`ports: no free port left in ${bandLow}-${bandHigh}`);
}
