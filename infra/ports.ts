import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the random picks start: above the ports of Kubernetes' own components (10248 to 10259). */
const lowest = 11_000;

/**
 * Where they end: before the first port the kernel hands out by itself (to listen(0) and to outgoing connections),
 * and before Kubernetes' NodePort range (30000 to 32767), which kube-proxy routes on this machine's addresses.
 */
function highest(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return Math.min(Number(low) || 30_000, 30_000);
  } catch {
    return 30_000;
  }
}

/**
 * A free loopback TCP port for a server this machine runs, picked at random below the kernel's own range and checked
 * free. A port from the kernel (listen on 0) would be free now, but the kernel may give it to the next listen(0)
 * or outgoing connection as soon as its server stops: a server upgraded in place (stopped, then started on the
 * same port) would find it taken, and whoever took it would answer in its place.
 */
export async function freePort(): Promise<number> {
  const span = highest() - lowest;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = lowest + Math.floor(Math.random() * span);
    if (!(await portInUse(port))) return port;
  }
  throw new Error(`no free port between ${lowest} and ${lowest + span - 1} after 100 tries`);
}

/** Whether something listens on host:port already. */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, host, () => server.close(() => resolve(false)));
  });
}
