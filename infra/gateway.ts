import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { CachedComponent } from './cache';
import { ensureComponent } from './cache';
import { goCommand } from './go-install';
import { runCommand } from './run-command';

/**
 * The Gateway API implementation Baton's Kubernetes routes are tested through, and the Gateway API's CRDs, pinned.
 * Traefik v3.6 implements HTTPRoute (weights, header matches) as one Go binary; its go.mod has replace directives,
 * so it is built with `go build` in a copy of its module's source rather than `go install`. v1.4.0 is the Gateway
 * API release that Traefik v3.6 is built against.
 */
export const gatewayVersions = {
  traefik: 'v3.6.12',
  gatewayApi: 'v1.4.0',
} as const;

const moduleDownload = z.object({ Dir: z.string().min(1) });

/** The source of a module version, from the Go module proxy into Go's module cache: its folder there. */
async function moduleSource(module: string, version: string): Promise<string> {
  const { stdout } = await promisify(execFile)('go', ['mod', 'download', '-json', `${module}@${version}`], {
    maxBuffer: 1 << 20,
  });
  return moduleDownload.parse(JSON.parse(stdout)).Dir;
}

function traefikComponent(): CachedComponent {
  const version = gatewayVersions.traefik;
  return {
    name: 'traefik',
    version,
    files: [join('bin', 'traefik')],
    async build(staging) {
      const src = join(staging, 'src');
      await cp(await moduleSource('github.com/traefik/traefik/v3', version), src, { recursive: true });
      // Go's module cache is read-only; the copy is built in place, go.sum growing as the proxy serves entries.
      await runCommand(['chmod', '-R', 'u+w', src], {
        label: 'making the Traefik source writable',
        quiet: true,
      });
      await goCommand(
        'Traefik',
        [
          'go',
          'build',
          '-trimpath',
          '-ldflags',
          `-X github.com/traefik/traefik/v3/pkg/version.Version=${version}`,
          '-o',
          join(staging, 'bin', 'traefik'),
          './cmd/traefik',
        ],
        {
          label: `building Traefik ${version} from the Go module proxy (a cold build takes about 7 minutes)`,
          cwd: src,
          env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
        },
      );
      await rm(src, { recursive: true, force: true });
    },
  };
}

function gatewayApiCrdsComponent(): CachedComponent {
  const version = gatewayVersions.gatewayApi;
  return {
    name: 'gateway-api-crds',
    version,
    files: [join('crds', 'gateway.networking.k8s.io_httproutes.yaml')],
    async build(staging) {
      const standard = join(
        await moduleSource('sigs.k8s.io/gateway-api', version),
        'config',
        'crd',
        'standard',
      );
      const crds = join(staging, 'crds');
      await mkdir(crds, { recursive: true });
      for (const file of await readdir(standard))
        if (file.endsWith('.yaml') && file.startsWith('gateway.networking.k8s.io_')) {
          await cp(join(standard, file), join(crds, file));
          await chmod(join(crds, file), 0o644);
        }
    },
  };
}

/** Traefik's binary, built once and cached. */
export async function ensureTraefik(): Promise<string> {
  return join(await ensureComponent(traefikComponent()), 'bin', 'traefik');
}

/** The folder of the Gateway API's standard-channel CRDs, one YAML file each. */
export async function ensureGatewayApiCrds(): Promise<string> {
  return join(await ensureComponent(gatewayApiCrdsComponent()), 'crds');
}
