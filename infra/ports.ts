import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { cacheRoot } from './cache';

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
 * Ports handed out on this machine, a file each naming the process that holds it (see freePort): in Baton's cache
 * folder, which every process of a run shares, whatever temp folder each was given.
 */
export const portReservations = join(cacheRoot(), 'ports');
const reservedHere = new Set<number>();

/**
 * Takes `port` for this process until it ends: false when a live process holds it. A server may not listen yet (it
 * boots first), or listen no more for a moment (it is being upgraded): another process picking the same number in
 * the meantime must not get it.
 */
export function reservePort(port: number): boolean {
  mkdirSync(portReservations, { recursive: true });
  const file = join(portReservations, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      reservedHere.add(port);
      return true;
    } catch {
      const holder = Number(readFileSync(file, 'utf8'));
      // An empty file is a reservation being written.
      if (!(holder > 0) || alive(holder)) return false;
      // Its holder has ended: the port is free to take.
      rmSync(file, { force: true });
    }
  }
  return false;
}

/** Whether process `pid` runs, whoever's it is (another user's answers EPERM). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

process.once('exit', () => {
  for (const port of reservedHere) rmSync(join(portReservations, String(port)), { force: true });
});

/**
 * A free loopback TCP port for a server this machine runs, held for this process until it ends. Picked at random
 * below the kernel's own range, checked free, and reserved against other processes' picks. A port from the kernel
 * (listen on 0) would be free now, but the kernel may give it to the next listen(0) or outgoing connection as soon
 * as its server stops: a server upgraded in place (stopped, then started on the same port) would find it taken,
 * and whoever took it would answer in its place.
 */
export async function freePort(): Promise<number> {
  const span = highest() - lowest;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lowest + Math.floor(Math.random() * span);
    if (reservedHere.has(port) || (await portInUse(port))) continue;
    if (reservePort(port)) return port;
  }
  throw new Error(`no free port between ${lowest} and ${lowest + span - 1} after 200 tries`);
}

/** Whether something listens on host:port already. */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, host, () => server.close(() => resolve(false)));
  });
}
