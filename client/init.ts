import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { z } from 'zod';
import { stringify as toYaml } from 'yaml';
import { HaproxyRuntimeApi } from '../activities/haproxy/runtime-api';
import type { KubernetesClients } from '../activities/kubernetes/api';
import { apiStatus } from '../activities/kubernetes/api';
import { imageTag } from '../activities/kubernetes/objects';
import { HttpVerifier } from '../activities/verify/http-verifier';
import type { RolloutSpecInput } from '../spec';
import { parseRolloutSpec } from '../spec';
import { httpVerification, resourceName, versionString } from '../spec/rollout';

/** `baton init` could not read what it was pointed at: it names what and why; nothing was written. */
export class InitError extends Error {
  override readonly name = 'InitError';
  constructor(
    message: string,
    /** Whether the thing named does not exist (exit 3), rather than being unreachable or unusable (exit 1). */
    readonly notFound = false,
  ) {
    super(message);
  }
}

/** One server of `show servers state <backend>`, as far as a spec needs it. */
const serverStateRow = z.object({
  srv_name: resourceName,
  srv_addr: z.string().regex(/^[A-Za-z0-9.:-]+$/, 'expected an address'),
  srv_port: z.coerce.number().int().min(1).max(65_535),
});

/**
 * The servers of an HAProxy backend, from the Runtime API's `show servers state`: a version line, a header of
 * column names after "# ", then one space-separated row per server.
 */
export async function readBackendServers(
  socket: string,
  backend: string,
): Promise<Array<{ name: string; address: string }>> {
  const answer = await new HaproxyRuntimeApi(socket)
    .send(`show servers state ${backend}`)
    .catch((error: Error) => {
      throw new InitError(error.message);
    });
  if (/Can't find backend/i.test(answer))
    throw new InitError(`HAProxy at ${socket} has no backend named ${backend}`, true);
  const lines = answer.split('\n').filter((line) => line.trim() !== '');
  const header = lines.find((line) => line.startsWith('# '));
  if (!header)
    throw new InitError(`unexpected answer to "show servers state ${backend}": ${answer.slice(0, 200)}`);
  const columns = header.slice(2).trim().split(/\s+/);
  const rows = lines.filter((line) => !line.startsWith('#') && /\s/.test(line.trim()));
  const servers = rows.map((line, index) => {
    const cells = line.trim().split(/\s+/);
    const parsed = serverStateRow.safeParse(Object.fromEntries(columns.map((c, i) => [c, cells[i]])));
    if (!parsed.success)
      throw new InitError(
        `server ${index + 1} of backend ${backend} is not usable in a spec: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    return { name: parsed.data.srv_name, address: `${parsed.data.srv_addr}:${parsed.data.srv_port}` };
  });
  if (servers.length === 0) throw new InitError(`backend ${backend} has no servers`, true);
  return servers;
}

/** The version the servers report where the default verification reads it (GET /healthz, JSON `version`). */
async function reportedVersion(servers: ReadonlyArray<{ address: string }>): Promise<string | undefined> {
  const check = httpVerification.parse({});
  for (const server of servers) {
    const probe = await new HttpVerifier().probe(`http://${server.address}${check.path}`, check);
    if (probe.ok && probe.version && versionString.safeParse(probe.version).success) return probe.version;
  }
  return undefined;
}

/** Comments a starter spec opens with, then the spec itself. */
function starterText(comments: readonly string[], spec: RolloutSpecInput): string {
  // The starter must validate as written, whatever `baton init` was given.
  parseRolloutSpec(spec, 'the starter spec');
  return `${comments.map((line) => `# ${line}`.trimEnd()).join('\n')}\n${toYaml(spec)}`;
}

export interface FleetInit {
  readonly socket: string;
  readonly backend: string;
  readonly name?: string;
  readonly version?: string;
  /** The upgrade argv template, as given after `--`. */
  readonly upgrade: readonly string[];
}

/** A commented fleet spec for the servers an HAProxy backend holds now. */
export async function fleetStarterSpec(init: FleetInit): Promise<string> {
  const servers = await readBackendServers(init.socket, init.backend);
  const version = init.version ?? (await reportedVersion(servers));
  if (version === undefined)
    throw new InitError(
      `no server of ${init.backend} reports its version at GET /healthz (JSON "version"): give it with --version`,
    );
  const spec: RolloutSpecInput = {
    apiVersion: 'baton.dev/v1',
    kind: 'Rollout',
    target: {
      kind: 'fleet',
      name: init.name ?? init.backend,
      loadBalancer: { haproxy: { socket: init.socket, backend: init.backend } },
      servers,
      upgrade: { argv: [...init.upgrade], timeout: '2m' },
    },
    version,
    strategy: { type: 'rolling', batchSize: 1 },
    drain: { timeout: '1m', onTimeout: 'fail' },
    verify: { http: { path: '/healthz', versionFrom: { json: 'version' }, passes: 3 } },
  };
  return starterText(
    [
      `A Baton rollout of HAProxy backend ${init.backend} (${servers.length} servers, read from ${init.socket}).`,
      `Written by baton init; version is what the servers run now (${version}), so starting it as it is changes`,
      'nothing. Roll out a new one with:  npx baton start -f <this file> --version v2',
      'For each server, one at a time: detach (state drain), drain, run upgrade.argv (no shell; placeholders',
      '{name} {address} {host} {port} {version}), verify GET /healthz reports the version, attach (state ready).',
      'Every field: spec/rollout.schema.json; more strategies: examples/.',
    ],
    spec,
  );
}

/** What init reads of a Deployment; anything else it leaves alone. */
const deploymentShape = z.object({
  metadata: z.object({ name: resourceName }),
  spec: z.object({
    template: z.object({
      metadata: z.object({ labels: z.record(z.string(), z.string()).default({}) }).default({ labels: {} }),
      spec: z.object({
        containers: z.array(z.object({ name: resourceName, image: z.string() })).min(1),
      }),
    }),
  }),
});

/** The Service whose selector picks the Deployment's pods: the one Baton takes pods out of before they go. */
function serviceOf(services: readonly V1Service[], podLabels: Record<string, string>): string | undefined {
  const selecting = services.filter((service) => {
    const selector = Object.entries(service.spec?.selector ?? {});
    return selector.length > 0 && selector.every(([key, value]) => podLabels[key] === value);
  });
  return selecting[0]?.metadata?.name;
}

export interface KubernetesInit {
  readonly deployment: string;
  readonly namespace: string;
  readonly container?: string;
  readonly name?: string;
}

/** A commented Kubernetes spec for a Deployment as it runs now: its container, image repository and tag, Service. */
export async function kubernetesStarterSpec(
  clients: KubernetesClients,
  init: KubernetesInit,
): Promise<string> {
  let deployment: V1Deployment;
  try {
    deployment = await clients.apps.readNamespacedDeployment({
      namespace: init.namespace,
      name: init.deployment,
    });
  } catch (error) {
    if (apiStatus(error) === 404)
      throw new InitError(`no Deployment ${init.deployment} in namespace ${init.namespace}`, true);
    throw new InitError(
      `could not read Deployment ${init.namespace}/${init.deployment}: ${(error as Error).message}`,
    );
  }
  const parsed = deploymentShape.safeParse(deployment);
  if (!parsed.success)
    throw new InitError(
      `Deployment ${init.deployment} has no usable container: ${parsed.error.issues[0]?.message}`,
    );
  const { containers } = parsed.data.spec.template.spec;
  const container = init.container
    ? containers.find((c) => c.name === init.container)
    : containers.length === 1
      ? containers[0]
      : undefined;
  if (!container)
    throw new InitError(
      init.container
        ? `Deployment ${init.deployment} has no container ${init.container}; it has ${containers.map((c) => c.name).join(', ')}`
        : `Deployment ${init.deployment} has containers ${containers.map((c) => c.name).join(', ')}: choose one with --container`,
    );
  const tag = imageTag(container.image);
  if (tag === undefined || !versionString.safeParse(tag).success)
    throw new InitError(
      `container ${container.name} runs ${container.image}, with no tag Baton can treat as a version (such as :v1)`,
    );
  const repository = container.image.slice(0, container.image.length - tag.length - 1);
  const services = await clients.core
    .listNamespacedService({ namespace: init.namespace })
    .catch((error: Error) => {
      throw new InitError(`could not list the Services of namespace ${init.namespace}: ${error.message}`);
    });
  const service = serviceOf(services.items, parsed.data.spec.template.metadata.labels);
  const spec: RolloutSpecInput = {
    apiVersion: 'baton.dev/v1',
    kind: 'Rollout',
    target: {
      kind: 'kubernetes',
      name: init.name ?? init.deployment,
      namespace: init.namespace,
      deployment: init.deployment,
      container: container.name,
      image: repository,
      ...(service ? { service } : {}),
      readyTimeout: '5m',
    },
    version: tag,
    strategy: { type: 'rolling', maxSurge: '25%', maxUnavailable: '25%' },
  };
  return starterText(
    [
      `A Baton rollout of Deployment ${init.namespace}/${init.deployment}, container ${container.name}, read from the cluster.`,
      `Written by baton init; version is the tag it runs now (${tag}), so starting it as it is changes nothing.`,
      `Roll out a new tag of ${repository} with:  npx baton start -f <this file> --version v2`,
      `The new version runs in its own Deployment (${init.deployment}-<version>) scaled against this one within`,
      service
        ? `maxSurge and maxUnavailable; each pod leaves Service ${service} before it goes.`
        : 'maxSurge and maxUnavailable. No Service selects these pods; add target.service when one does.',
      'Every field: spec/rollout.schema.json; more strategies: examples/.',
    ],
    spec,
  );
}
