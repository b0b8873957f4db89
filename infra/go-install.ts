import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import type { CachedComponent } from './cache';
import { ensureComponent } from './cache';
import type { RunOptions } from './run-command';
import { runCommand } from './run-command';

/** Words in Go's output that mean the module proxy could not be reached, rather than a build error. */
const unreachable =
  /dial tcp|no such host|connection refused|i\/o timeout|TLS handshake timeout|proxyconnect|network is unreachable/i;

/** Runs a go command, saying so plainly when the Go module proxy could not be reached. */
export async function goCommand(name: string, argv: string[], options: RunOptions): Promise<void> {
  try {
    await runCommand(argv, options);
  } catch (error) {
    const message = (error as Error).message;
    if (unreachable.test(message)) {
      throw new Error(
        `could not reach the Go module proxy (GOPROXY=${process.env.GOPROXY ?? 'default'}) to build ${name}:\n${message}`,
      );
    }
    throw error;
  }
}

/**
 * A Go program built with `go install module@version` from the Go module proxy, into the cache. Go's own
 * module and build caches make a rebuild after a cache wipe fast.
 */
export function goInstalled(spec: {
  name: string;
  module: string;
  version: string;
  binary: string;
  /** More packages of the same module version, each installed as its own binary beside the first. */
  extraPackages?: readonly string[];
  env?: Record<string, string>;
}): CachedComponent {
  const packages = [spec.module, ...(spec.extraPackages ?? [])].map((p) => `${p}@${spec.version}`);
  return {
    name: spec.name,
    version: spec.version,
    files: [join('bin', spec.binary)],
    build: (staging) =>
      goCommand(spec.name, ['go', 'install', ...packages], {
        label: `building ${spec.name} ${spec.version} with go install from the Go module proxy (a cold build takes minutes)`,
        env: { ...process.env, GOBIN: join(staging, 'bin'), ...spec.env },
      }),
  };
}

export async function ensureGoBinary(spec: Parameters<typeof goInstalled>[0]): Promise<string> {
  return join(await ensureComponent(goInstalled(spec)), 'bin', spec.binary);
}

/**
 * Programs whose module `go install` refuses (its go.mod has replace directives), built inside a small wrapper
 * module kept in this repository (go.mod, go.sum, tools.go) that requires the module and replaces what it must.
 * The cache key carries a hash of the wrapper, so changing the wrapper rebuilds.
 */
export function builtFromWrapper(spec: {
  name: string;
  version: string;
  /** Folder of the wrapper module in this repository. */
  wrapperDir: string;
  /** Output binary name -> Go package to build. */
  binaries: Readonly<Record<string, string>>;
  /** -X settings, as upstream's release builds stamp their version. */
  ldflags?: string;
}): CachedComponent {
  const hash = createHash('sha256');
  // A wrapper that is a program of its own keeps it in main.go (the Kubernetes wrappers have none); one with no
  // dependency has no go.sum, and one that builds only itself no tools.go.
  for (const file of ['go.mod', 'go.sum', 'tools.go', 'main.go']) {
    const path = join(spec.wrapperDir, file);
    if (existsSync(path)) hash.update(readFileSync(path));
  }
  hash.update(spec.ldflags ?? '');
  return {
    name: spec.name,
    version: `${spec.version}-${hash.digest('hex').slice(0, 8)}`,
    files: Object.keys(spec.binaries).map((binary) => join('bin', binary)),
    async build(staging) {
      const src = join(staging, 'src');
      await cp(spec.wrapperDir, src, { recursive: true });
      // Upstream builds these without cgo; -mod=mod lets go record go.sum entries the proxy serves.
      const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
      for (const [binary, pkg] of Object.entries(spec.binaries)) {
        const ldflags = spec.ldflags ? ['-ldflags', spec.ldflags] : [];
        await goCommand(
          spec.name,
          ['go', 'build', '-trimpath', ...ldflags, '-o', join(staging, 'bin', binary), pkg],
          {
            label: `building ${binary} ${spec.version} from the Go module proxy (a cold build takes minutes)`,
            cwd: src,
            env,
          },
        );
      }
    },
  };
}
