import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../run-command';

/** What a container of the image runs, as an OCI image config's `config` object spells it. */
export interface OciImageConfig {
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly Env?: readonly string[];
  readonly WorkingDir?: string;
  readonly ExposedPorts?: Readonly<Record<string, Record<string, never>>>;
  readonly StopSignal?: string;
}

export interface OciImage {
  /** The reference containerd lists it by, `baton.local/demo-app:v2`. */
  readonly reference: string;
  readonly config: OciImageConfig;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Writes an OCI image layout archive (the tar `ctr images import` and `docker load` take) holding one image per
 * entry of `images`, all sharing a single layer made of `rootfs`. The layer is made with fixed owners and
 * times, so the same files give the same digest on every machine.
 */
export async function writeOciArchive(options: {
  rootfs: string;
  workDir: string;
  archive: string;
  images: readonly OciImage[];
}): Promise<void> {
  const layout = join(options.workDir, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layerTar = join(options.workDir, 'layer.tar');
  await runCommand(
    [
      'tar',
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-cf',
      layerTar,
      '-C',
      options.rootfs,
      '.',
    ],
    { label: 'packing the image layer' },
  );
  // The layer goes uncompressed: its diff ID is then its digest, and importing it skips a decompression.
  const layer: Descriptor = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    digest: await sha256OfFile(layerTar),
    size: (await stat(layerTar)).size,
  };
  await rename(layerTar, join(blobs, layer.digest.slice('sha256:'.length)));

  const writeBlob = async (mediaType: string, content: unknown): Promise<Descriptor> => {
    const bytes = Buffer.from(JSON.stringify(content));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await writeFile(join(blobs, digest.slice('sha256:'.length)), bytes);
    return { mediaType, digest, size: bytes.length };
  };
  const manifests: Descriptor[] = [];
  for (const image of options.images) {
    const config = await writeBlob('application/vnd.oci.image.config.v1+json', {
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: image.config,
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'baton infra/kubernetes/oci-archive.ts' }],
    });
    const manifest = await writeBlob('application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers: [layer],
    });
    manifests.push({
      ...manifest,
      annotations: {
        'io.containerd.image.name': image.reference,
        'org.opencontainers.image.ref.name': image.reference.slice(image.reference.lastIndexOf(':') + 1),
      },
    });
  }
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
  );
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await runCommand(['tar', '-cf', options.archive, '-C', layout, '.'], {
    label: 'writing the image archive',
  });
}
