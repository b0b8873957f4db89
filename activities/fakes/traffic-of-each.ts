import type { ServerTraffic, TrafficProvider } from '../ports';

/** A fake's group reading: each server read on its own, as its `traffic` reads it. */
export async function trafficOfEach(
  provider: Pick<TrafficProvider, 'traffic'>,
  servers: readonly string[],
): Promise<Record<string, ServerTraffic>> {
  const readings = await Promise.all(servers.map(async (server) => [server, await provider.traffic(server)]));
  return Object.fromEntries(readings) as Record<string, ServerTraffic>;
}
