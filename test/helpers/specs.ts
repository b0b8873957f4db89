import { InMemoryFleet } from '../../activities/fakes/in-memory-fleet';
import type { RolloutSpec, RolloutSpecInput } from '../../spec';
import { parseRolloutSpec } from '../../spec';

export const serverNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `web-${i + 1}`);

/** A fleet spec for the in-memory fleet: fast polls, short verification, overrides merged on top. */
export function inMemoryFleetSpec(
  servers: number,
  overrides: Partial<RolloutSpecInput> = {},
  target = 'web',
): RolloutSpec {
  return parseRolloutSpec({
    target: {
      kind: 'fleet',
      name: target,
      loadBalancer: { haproxy: { socket: '/in-memory/admin.sock', backend: 'web' } },
      servers: serverNames(servers).map((name, i) => ({ name, address: InMemoryFleet.address(i) })),
      upgrade: { argv: ['fake-upgrade', '{name}', '{version}'], timeout: '5s' },
    },
    version: 'v2',
    strategy: { type: 'rolling', batchSize: 2 },
    drain: { timeout: '5s', pollInterval: '10ms' },
    verify: { http: { passes: 2, interval: '10ms', timeout: '500ms' } },
    ...overrides,
  });
}

/** The smallest valid fleet spec a user can write: every optional field left to its default. */
export function minimalFleetSpecInput(): RolloutSpecInput & {
  target: Extract<RolloutSpecInput['target'], { kind: 'fleet' }>;
} {
  return {
    target: {
      kind: 'fleet',
      name: 'web',
      loadBalancer: { haproxy: { socket: '/run/haproxy/admin.sock', backend: 'web' } },
      servers: [
        { name: 'web-1', address: '127.0.0.1:8081' },
        { name: 'web-2', address: '127.0.0.1:8082' },
      ],
      upgrade: { argv: ['/usr/local/bin/deploy', '{name}', '{version}'] },
    },
    version: 'v2',
  };
}
