import { haproxyConfig } from '../haproxy';
import { startHost, writeFleetFile } from '../fleet/hosts';

/**
 * The demo fleet of docker-compose.yml: three demo servers inside the worker's container (its upgrade command,
 * hostctl, stops and starts them there), behind the compose HAProxy.
 */
export const composeFleet = {
  dir: '/var/lib/baton/fleet',
  socket: '/run/haproxy/admin.sock',
  backend: 'web',
  frontendPort: 8080,
  servers: [1, 2, 3].map((n) => ({ name: `web-${n}`, address: `worker:${8080 + n}` })),
} as const;

/** deploy/compose/haproxy.cfg: what infra/haproxy.ts writes for the local fleet, for the compose services. */
export function composeHaproxyConfig(): string {
  return haproxyConfig({
    socket: composeFleet.socket,
    frontendPort: composeFleet.frontendPort,
    bindAddress: '*',
    backend: composeFleet.backend,
    servers: composeFleet.servers,
  });
}

/** The worker container's start: the demo servers on v1 (listening on every interface), then the worker. */
async function main(): Promise<void> {
  await writeFleetFile(composeFleet.dir, {
    servers: composeFleet.servers.map((s) => ({
      name: s.name,
      address: s.address.replace('worker', '0.0.0.0'),
    })),
    defaults: { latencyMs: 20 },
  });
  for (const server of composeFleet.servers) await startHost(composeFleet.dir, server.name, 'v1');
  process.stdout.write(`demo fleet on v1 in ${composeFleet.dir}\n`);
  // Importing the worker's entry point starts it.
  await import('../../worker/main.js');
}

if (require.main === module) void main();
