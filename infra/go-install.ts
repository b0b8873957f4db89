import { join } from 'node:path';
import type { CachedComponent } from './cache';
import { ensureComponent } from './cache';
import { runCommand } from './run-command';

/** Words in Go's output that mean the module proxy could not be reached, rather than a build error. */
const unreachable =
  /dial tcp|no such host|connection refused|i\/o timeout|TLS handshake timeout|proxyconnect|network is unreachable/i;

/**
 * A Go program built with `go install module@version` from the Go module proxy, into the cache. Go's own
 * module and build caches make a rebuild after a cache wipe fast.
 */
export function goInstalled(spec: {
  name: string;
  module: string;
  version: string;
  binary: string;
  env?: Record<string, string>;
}): CachedComponent {
  return {
    name: spec.name,
    version: spec.version,
    files: [join('bin', spec.binary)],
    async build(staging) {
      const label = `building ${spec.name} ${spec.version} with go install from the Go module proxy (a cold build takes minutes)`;
      try {
        await runCommand(['go', 'install', `${spec.module}@${spec.version}`], {
          label,
          env: { ...process.env, GOBIN: join(staging, 'bin'), ...spec.env },
        });
      } catch (error) {
        const message = (error as Error).message;
        if (unreachable.test(message)) {
          throw new Error(
            `could not reach the Go module proxy (GOPROXY=${process.env.GOPROXY ?? 'default'}) to build ${spec.name}:\n${message}`,
          );
        }
        throw error;
      }
    },
  };
}

export async function ensureGoBinary(spec: Parameters<typeof goInstalled>[0]): Promise<string> {
  return join(await ensureComponent(goInstalled(spec)), 'bin', spec.binary);
}
