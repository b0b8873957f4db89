import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CachedComponent } from '../cache';
import { ensureComponent } from '../cache';
import { runCommand } from '../run-command';
import type { OciImage } from './oci-archive';
import { writeOciArchive } from './oci-archive';

/** The repository the demo app's images are listed under; a rollout's version is the tag. */
export const demoImageRepository = 'baton.local/demo-app';
/** The pod sandbox image containerd is told to use, so that it pulls nothing. */
export const pauseImage = 'baton.local/pause:1';
/** The port the demo app listens on in its container. */
export const demoAppPort = 8080;

/**
 * Tags of the demo app's image. `v1`…`v9` serve normally and report their tag as their version; `broken` answers
 * its readiness probe with 503, so it never becomes Ready; `crashing` exits 5 s after it starts serving; `erroring`
 * answers 30% of requests with 500 and `slow` takes 200 ms over each, while both stay Ready (for an analysis).
 */
export const demoImageTags = [
  'v1',
  'v2',
  'v3',
  'v4',
  'v5',
  'v6',
  'v7',
  'v8',
  'v9',
  'broken',
  'crashing',
  'erroring',
  'slow',
] as const;

function demoArgs(tag: (typeof demoImageTags)[number]): string[] {
  // Idle keep-alive connections are let go 5 s after SIGTERM: after a client's usual 4 s idle timeout.
  const base = [
    '--host',
    '0.0.0.0',
    '--port',
    String(demoAppPort),
    '--version',
    tag,
    '--close-idle-after-ms',
    '5000',
  ];
  if (tag === 'broken') return [...base, '--health-status', '503'];
  if (tag === 'crashing') return [...base, '--exit-after-ms', '5000'];
  // A real service takes a moment to boot; so does this one, as on the fleet.
  const booting = [...base, '--startup-ms', '1000'];
  if (tag === 'erroring') return [...booting, '--latency-ms', '20', '--error-rate', '0.3'];
  if (tag === 'slow') return [...booting, '--latency-ms', '200'];
  return [...booting, '--latency-ms', '20'];
}

const appSource = join(__dirname, '..', 'demo-app', 'server.ts');
/** What appSource bundles besides itself. */
const appServer = join(__dirname, '..', 'demo-app', 'demo-server.ts');
const root = join(__dirname, '..', '..');

/** The shared libraries a program loads, as ldd lists them. */
function sharedLibraries(program: string): string[] {
  return execFileSync('ldd', [program])
    .toString()
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined);
}

function demoImageComponent(pause: string): CachedComponent {
  const hash = createHash('sha256');
  for (const file of [appSource, appServer, __filename, join(__dirname, 'oci-archive.ts'), pause])
    hash.update(readFileSync(file));
  hash.update(process.version);
  return {
    name: 'demo-image',
    version: `${process.version}-${hash.digest('hex').slice(0, 8)}`,
    files: ['images.tar', 'pause.tar'],
    async build(staging) {
      // The demo app as the fleet runs it, bundled into one file, on this machine's Node and its libraries.
      const rootfs = join(staging, 'rootfs');
      const node = process.execPath;
      for (const file of [node, ...sharedLibraries(node)]) {
        await mkdir(join(rootfs, dirname(file)), { recursive: true });
        await cp(file, join(rootfs, file), { dereference: true });
      }
      await mkdir(join(rootfs, 'tmp'), { recursive: true });
      await runCommand(
        [
          join(root, 'node_modules', '.bin', 'esbuild'),
          appSource,
          '--bundle',
          '--platform=node',
          `--target=node${process.versions.node.split('.')[0]}`,
          `--outfile=${join(rootfs, 'app', 'server.js')}`,
          '--log-level=warning',
        ],
        { label: 'bundling the demo app' },
      );
      const images: OciImage[] = demoImageTags.map((tag) => ({
        reference: `${demoImageRepository}:${tag}`,
        config: {
          Entrypoint: [node, '/app/server.js'],
          Cmd: demoArgs(tag),
          ExposedPorts: { [`${demoAppPort}/tcp`]: {} },
          StopSignal: 'SIGTERM',
        },
      }));
      await writeOciArchive({
        rootfs,
        workDir: join(staging, 'demo'),
        archive: join(staging, 'images.tar'),
        images,
      });

      const pauseRoot = join(staging, 'pause-rootfs');
      await mkdir(pauseRoot, { recursive: true });
      await cp(pause, join(pauseRoot, 'pause'));
      await writeOciArchive({
        rootfs: pauseRoot,
        workDir: join(staging, 'pause'),
        archive: join(staging, 'pause.tar'),
        images: [{ reference: pauseImage, config: { Entrypoint: ['/pause'] } }],
      });
      // Only the archives are kept: the trees they were made of are a few hundred MB.
      for (const dir of ['rootfs', 'demo', 'pause-rootfs', 'pause'])
        await rm(join(staging, dir), { recursive: true, force: true });
    },
  };
}

/** The OCI archives of the demo app's images and of the pause image, built once from what is on this machine. */
export async function ensureDemoImages(pause: string): Promise<{ demo: string; pause: string }> {
  const dir = await ensureComponent(demoImageComponent(pause));
  return { demo: join(dir, 'images.tar'), pause: join(dir, 'pause.tar') };
}
