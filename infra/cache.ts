import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Baton's cache: $XDG_CACHE_HOME/baton or ~/.cache/baton, outside any clone so fresh clones reuse builds. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'baton');
}

export function say(message: string): void {
  process.stderr.write(`[baton infra] ${message}\n`);
}

/**
 * A component installed once into the cache, keyed by name and version. `build` fills a private staging folder;
 * only a finished build is renamed into place, so an interrupted build is never mistaken for a good one and two
 * processes installing at once don't corrupt each other.
 */
export interface CachedComponent {
  readonly name: string;
  readonly version: string;
  /** Relative paths inside the component folder that must exist once it is built. */
  readonly files: readonly string[];
  build(stagingDir: string): Promise<void>;
}

const completeMarker = '.complete';

export function componentDir(component: Pick<CachedComponent, 'name' | 'version'>): string {
  return join(cacheRoot(), component.name, component.version);
}

/** Returns the component's folder, building it first if the cache doesn't hold it yet. */
export async function ensureComponent(component: CachedComponent): Promise<string> {
  const dir = componentDir(component);
  if (existsSync(join(dir, completeMarker)) && component.files.every((f) => existsSync(join(dir, f))))
    return dir;
  const staging = `${dir}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const started = Date.now();
  try {
    await component.build(staging);
    for (const file of component.files) {
      if (!existsSync(join(staging, file)))
        throw new Error(`building ${component.name} ${component.version} did not produce ${file}`);
    }
    await writeFile(join(staging, completeMarker), `${new Date().toISOString()}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  say(
    `${component.name} ${component.version} ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`,
  );
  return dir;
}
