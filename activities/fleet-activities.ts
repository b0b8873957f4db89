import { setMaxListeners } from 'node:events';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { z } from 'zod';
import type {
  DrainPolicy,
  FleetProvision,
  FleetServer,
  HaproxyLoadBalancer,
  HookCommand,
  HttpVerification,
  UpgradeCommand,
} from '../spec/rollout';
import { loadBalancerReloaded } from '../spec/failure-types';
import { HaproxyUnreachableError } from './haproxy/runtime-api';
import { fillArgv, renderArgv } from './hosts/argv-template';
import { verificationFailed, verifyAt } from './verify/verify-at';
import type { ActivityDeps, RuntimeState, ServerSample, ServerTraffic, TrafficProvider } from './ports';

/** Failure types the workflow reacts to; retrying them would not help. */
export const failureTypes = {
  preflight: 'PreflightFailed',
  drainTimeout: 'DrainTimeout',
  verification: verificationFailed,
  upgrade: 'UpgradeFailed',
  /** The load balancer runs another process than the one the rollout's runtime state was put in. */
  reloaded: loadBalancerReloaded,
} as const;

/**
 * A load balancer as a step names it: with the process that, when the rollout last looked, held everything the
 * rollout set at run time. Absent in rollouts started before reloads were watched for.
 */
export interface LoadBalancerRef extends HaproxyLoadBalancer {
  readonly process?: string;
}

/** The address a create command prints as its last line of output. */
const createdAddress = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected host:port as the last line of its output');

export interface ServerRef {
  readonly loadBalancer: LoadBalancerRef;
  readonly server: string;
}

export interface DrainOutcome {
  /** True when the server reached zero in-flight requests; false when the policy forced it on. */
  readonly drained: boolean;
  readonly waitedMs: number;
  readonly remaining?: ServerTraffic;
}

export function healthUrl(server: FleetServer, check: HttpVerification): string {
  return server.healthUrl ?? `http://${server.address}${check.path}`;
}

const isIdle = (t: ServerTraffic) => t.sessions === 0 && t.queued === 0 && t.usedConnections === 0;

/**
 * Heartbeats every few seconds while a command runs, so a worker that dies mid-command is noticed by its
 * heartbeat timeout instead of the command's whole timeout.
 */
async function heartbeating<T>(ctx: Context, work: Promise<T>): Promise<T> {
  const beat = setInterval(() => ctx.heartbeat(), 3_000);
  try {
    return await work;
  } finally {
    clearInterval(beat);
  }
}

/** Limits concurrent probes of a large fleet. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}

/**
 * Waits until detached servers have no request in flight, heartbeating, with one reading of the whole group per
 * poll; past the policy's timeout a server fails, goes on (force) or keeps being waited for. `startedAt` is when
 * the drain began, kept across retried attempts. Each server's outcome, or the failure its policy made of it.
 */
async function drainEach(
  ctx: Context,
  traffic: TrafficProvider,
  servers: readonly string[],
  policy: DrainPolicy,
  startedAt: number,
  check: () => void = () => undefined,
): Promise<Map<string, DrainOutcome | Error>> {
  const outcomes = new Map<string, DrainOutcome | Error>();
  const warned = new Set<string>();
  let waiting = [...servers];
  for (;;) {
    const readings = await traffic.trafficOf(waiting);
    const waitedMs = Date.now() - startedAt;
    waiting = waiting.filter((server) => {
      const current = readings[server];
      if (!current || isIdle(current)) {
        outcomes.set(server, { drained: true, waitedMs });
        return false;
      }
      if (waitedMs < policy.timeout) return true;
      const left = `${current.sessions} sessions, ${current.queued} queued, ${current.usedConnections} connections`;
      if (policy.onTimeout === 'fail') {
        outcomes.set(
          server,
          ApplicationFailure.nonRetryable(
            `${server} did not drain within ${policy.timeout} ms (${left} left)`,
            failureTypes.drainTimeout,
          ),
        );
        return false;
      }
      if (policy.onTimeout === 'force') {
        log.warn('drain timed out; going on as the policy says', { server, left });
        outcomes.set(server, { drained: false, waitedMs, remaining: current });
        return false;
      }
      if (!warned.has(server))
        log.warn('drain timed out; still waiting as the policy says', { server, left });
      warned.add(server);
      return true;
    });
    // No heartbeat once idle: the activity completes only after its last heartbeat is handed over, so one sent
    // as it ends would only delay the next step.
    if (waiting.length === 0) return outcomes;
    ctx.heartbeat({
      startedAt,
      current: waiting.length === 1 ? readings[waiting[0] ?? ''] : undefined,
      waiting: waiting.length,
    });
    await ctx.sleep(policy.pollInterval);
    check();
  }
}

/** One server's drain, as drainEach waits for it; its policy's failure is thrown. */
async function drainOne(
  ctx: Context,
  traffic: TrafficProvider,
  server: string,
  policy: DrainPolicy,
  startedAt: number,
  check?: () => void,
): Promise<DrainOutcome> {
  const outcome = (await drainEach(ctx, traffic, [server], policy, startedAt, check)).get(server);
  if (outcome instanceof Error) throw outcome;
  return outcome ?? { drained: true, waitedMs: Date.now() - startedAt };
}

/** Checks a server itself until it passes N times in a row reporting the expected version. */
function verifyOne(
  ctx: Context,
  deps: ActivityDeps,
  server: FleetServer,
  verify: HttpVerification,
  version: string,
): Promise<{ checks: number }> {
  return verifyAt(ctx, deps.verifier, server.name, healthUrl(server, verify), verify, version);
}

/** How often a step on detached servers checks that the load balancer still holds them out of rotation. */
const rotationCheckEveryMs = 200;

/** How often a workflow's wait checks for a reload: a pid read, one short command. */
const holdCheckEveryMs = 500;

/**
 * Fails, for the workflow to put its runtime state back and run the step again, when the load balancer is not the
 * process the rollout last saw holding that state: a reload by configuration management forgets drains, weights
 * and added servers, and a step taken on what is left could send requests where none should go.
 */
async function sameProcess(traffic: TrafficProvider, lb: LoadBalancerRef): Promise<void> {
  if (lb.process === undefined) return;
  const now = await traffic.process();
  if (now !== lb.process)
    throw ApplicationFailure.nonRetryable(
      `HAProxy (backend ${lb.backend}) was reloaded: process ${now}, not ${lb.process}; what the rollout set at run time is lost until it is put back`,
      failureTypes.reloaded,
    );
}

/** Puts back what a reload forgot, saying so in the worker's log when there was anything. */
async function restoreRuntime(
  traffic: TrafficProvider,
  lb: HaproxyLoadBalancer,
  state: RuntimeState,
): Promise<{ process: string; restored: string[] }> {
  const outcome = await traffic.restore(state);
  if (outcome.restored.length > 0)
    log.warn('HAProxy was reloaded and forgot what the rollout set at run time; put it back', {
      backend: lb.backend,
      process: outcome.process,
      restored: outcome.restored,
    });
  return outcome;
}

/** The load balancer's provider, once it is the process that holds the rollout's runtime state. */
async function trafficAt(deps: ActivityDeps, lb: LoadBalancerRef): Promise<TrafficProvider> {
  const traffic = deps.trafficFor(lb);
  await sameProcess(traffic, lb);
  return traffic;
}

/**
 * The load balancer profile's retry schedule (`loadBalancerProfile` in workflows/profiles.ts): how long an outage
 * of the admin socket a load balancer command rides out.
 */
const loadBalancerOutage = { firstDelayMs: 500, factor: 2, maxDelayMs: 10_000, attempts: 20 } as const;

/**
 * `trafficAt` for a step that is not a load balancer command (an upgrade) but reads HAProxy first: an admin socket
 * that is gone for a while is the load balancer's fault, so it is waited out on the load balancer's schedule,
 * heartbeating with `beat`, instead of spending the step's own attempts (an upgrade has three) and failing a
 * healthy server.
 */
async function trafficThroughOutage(
  deps: ActivityDeps,
  lb: LoadBalancerRef,
  beat: () => void,
): Promise<TrafficProvider> {
  const ctx = Context.current();
  let delayMs: number = loadBalancerOutage.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await trafficAt(deps, lb);
    } catch (error) {
      if (!(error instanceof HaproxyUnreachableError) || attempt >= loadBalancerOutage.attempts) throw error;
      log.warn('HAProxy is unreachable; reading it again', { attempt, error: error.message });
      beat();
      await ctx.sleep(delayMs);
      delayMs = Math.min(delayMs * loadBalancerOutage.factor, loadBalancerOutage.maxDelayMs);
    }
  }
}

/**
 * Runs `work` (a wait that calls `check` between its polls) and fails it as soon as the load balancer is found
 * reloaded, checking every 200 ms: a drain waited out while the reload put its servers back in rotation and took
 * away the servers the rollout added would end with nothing it meant.
 */
async function failingOnReload<T>(
  traffic: TrafficProvider,
  lb: LoadBalancerRef,
  work: (check: () => void) => Promise<T>,
): Promise<T> {
  let reloaded: Error | undefined;
  const check = () => {
    if (reloaded !== undefined) throw reloaded;
  };
  return checkedWhile(
    () => work(check),
    async () => {
      try {
        await sameProcess(traffic, lb);
      } catch (error) {
        // Any other failure to read is the work's own to meet.
        if ((error as ApplicationFailure).type !== failureTypes.reloaded) return;
        reloaded = error as ApplicationFailure;
        throw reloaded;
      }
    },
  );
}

/**
 * Runs `work`, and `check` every 200 ms while it runs. A check that throws fails the whole at once; the work is
 * left to end on its own.
 */
async function checkedWhile<T>(work: () => Promise<T>, check: () => Promise<void>): Promise<T> {
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: () => void = () => undefined;
  const watching = (async () => {
    while (!finished) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, rotationCheckEveryMs);
      });
      if (!finished) await check();
    }
  })();
  // Settles only when a check fails: the race then fails with it.
  const failed = new Promise<never>((_, reject) => void watching.catch(reject));
  try {
    return await Promise.race([work(), failed]);
  } finally {
    finished = true;
    clearTimeout(timer);
    wake();
    await watching.catch(() => undefined);
  }
}

/**
 * Runs `work` on servers Baton took out of rotation, holding them out: a load balancer reloaded meanwhile (a
 * configuration management run) starts from its configuration file, forgets the drains set at run time, and
 * would send requests to a server being drained or upgraded. The servers are checked before the work starts and
 * every 200 ms while it runs, with one reading for all of them, and detached again, with a warning, when lost.
 * A load balancer that can't be read is warned of and does not stop the work: the step's own commands tell.
 */
async function keptOutOfRotation<T>(
  traffic: TrafficProvider | undefined,
  servers: readonly string[],
  work: () => Promise<T>,
): Promise<T> {
  if (!traffic || servers.length === 0) return work();
  const restore = async () => {
    try {
      const lost = await traffic.undrained(servers);
      if (lost.length === 0) return;
      log.warn('the load balancer put detached servers back in rotation (reloaded?); detaching them again', {
        servers: lost,
      });
      await traffic.switchTraffic([], lost);
    } catch (error) {
      log.warn('could not check that detached servers are still out of rotation', {
        error: (error as Error).message,
      });
    }
  };
  await restore();
  return checkedWhile(work, restore);
}

/**
 * The activity's context for a step on `servers` servers at once, each of whose commands and checks listens for
 * the activity's cancellation: as many listeners as servers, which Node would otherwise warn of past ten.
 */
function bulkContext(servers: number): Context {
  const ctx = Context.current();
  setMaxListeners(Math.max(10, servers + 10), ctx.cancellationSignal);
  return ctx;
}

/** A bulk step's outcome for each server: undefined when it went well, or why it failed. */
export type BulkOutcomes = Record<string, string | undefined>;

/**
 * Runs `fn` for every item at once (a group is as many servers as the rollout takes out at once, which is the
 * operator's choice), turning each failure into its message.
 */
async function settleEach<T>(
  items: readonly T[],
  name: (item: T) => string,
  fn: (item: T) => Promise<void>,
): Promise<BulkOutcomes> {
  const outcomes: BulkOutcomes = {};
  await mapLimited(items, items.length, async (item) => {
    try {
      await fn(item);
      outcomes[name(item)] = undefined;
    } catch (error) {
      outcomes[name(item)] = (error as Error).message;
    }
  });
  return outcomes;
}

/**
 * The same steps for many servers at once, one activity per step for a whole batch: a batch of a hundred costs
 * five activities instead of five hundred, which is what lets one rollout take thousands of servers. Load
 * balancer steps (detach, attach) succeed or are retried as a whole; drains, upgrades and verifications report
 * each server's outcome, so one bad server fails alone.
 */
function createBulkActivities(deps: ActivityDeps) {
  const detachServers = async (input: {
    loadBalancer: LoadBalancerRef;
    servers: string[];
  }): Promise<void> => {
    await (await trafficAt(deps, input.loadBalancer)).switchTraffic([], input.servers);
  };

  const attachServers = async (input: {
    loadBalancer: LoadBalancerRef;
    servers: string[];
  }): Promise<void> => {
    const ctx = Context.current();
    const traffic = await trafficAt(deps, input.loadBalancer);
    await traffic.switchTraffic(input.servers, []);
    // In rotation once HAProxy's own checks see each one UP, as attachServer waits for one.
    for (let rising = input.servers; rising.length > 0; ) {
      await sameProcess(traffic, input.loadBalancer);
      const readings = await traffic.trafficOf(rising);
      rising = rising.filter((server) => !/^(UP|no check)/.test(readings[server]?.status ?? ''));
      if (rising.length === 0) return;
      ctx.heartbeat({ rising: rising.length, status: readings[rising[0] ?? '']?.status });
      await ctx.sleep(100);
    }
  };

  return {
    detachServers,
    attachServers,

    /**
     * One group back in rotation, then the next one out: the two load balancer steps between groups as one
     * command, so the next group leaves as soon as the last is UP again and never more than one group is out.
     * A retry runs both again, which is harmless: each sets a desired state.
     */
    handOverServers: async (input: {
      loadBalancer: LoadBalancerRef;
      attach: string[];
      detach: string[];
    }): Promise<void> => {
      await attachServers({ loadBalancer: input.loadBalancer, servers: input.attach });
      await detachServers({ loadBalancer: input.loadBalancer, servers: input.detach });
    },

    drainServers: async (input: {
      loadBalancer: LoadBalancerRef;
      servers: string[];
      policy: DrainPolicy;
    }): Promise<{ failed: BulkOutcomes; forced: string[] }> => {
      const ctx = Context.current();
      const traffic = await trafficAt(deps, input.loadBalancer);
      const resumed = ctx.info.heartbeatDetails as { startedAt?: number } | undefined;
      const startedAt = resumed?.startedAt ?? Date.now();
      const outcomes =
        input.loadBalancer.process === undefined
          ? await keptOutOfRotation(traffic, input.servers, () =>
              drainEach(ctx, traffic, input.servers, input.policy, startedAt),
            )
          : await failingOnReload(traffic, input.loadBalancer, (check) =>
              drainEach(ctx, traffic, input.servers, input.policy, startedAt, check),
            );
      const failed: BulkOutcomes = {};
      const forced: string[] = [];
      for (const server of input.servers) {
        const outcome = outcomes.get(server);
        failed[server] = outcome instanceof Error ? outcome.message : undefined;
        if (outcome && !(outcome instanceof Error) && !outcome.drained) forced.push(server);
      }
      return { failed, forced };
    },

    /**
     * Runs the upgrade command of each server, each tried up to three times. A retried attempt (the worker died)
     * skips the servers its heartbeats said were done, and any that already answers on the version, so no
     * server is upgraded twice.
     */
    upgradeServers: async (input: {
      servers: FleetServer[];
      upgrade: UpgradeCommand;
      version: string;
      verify: HttpVerification;
      /** Where the servers were detached, to hold them out while they are upgraded; absent in older rollouts. */
      loadBalancer?: LoadBalancerRef;
    }): Promise<BulkOutcomes> => {
      const ctx = bulkContext(input.servers.length);
      const done = new Set((ctx.info.heartbeatDetails as { done?: string[] } | undefined)?.done ?? []);
      const retried = ctx.info.attempt > 1;
      const traffic =
        input.loadBalancer &&
        (await trafficThroughOutage(deps, input.loadBalancer, () => ctx.heartbeat({ done: [...done] })));
      const beat = setInterval(() => ctx.heartbeat({ done: [...done] }), 3_000);
      try {
        return await keptOutOfRotation(
          traffic,
          input.servers.map((server) => server.name),
          () =>
            settleEach(
              input.servers,
              (server) => server.name,
              async (server) => {
                if (done.has(server.name)) return;
                if (retried) {
                  const probe = await deps.verifier.probe(healthUrl(server, input.verify), input.verify);
                  if (probe.ok && probe.version === input.version) return void done.add(server.name);
                }
                const argv = renderArgv(input.upgrade.argv, server, input.version);
                for (let attempt = 1; ; attempt++) {
                  try {
                    await deps.hosts.run(argv, {
                      timeoutMs: input.upgrade.timeout,
                      signal: ctx.cancellationSignal,
                    });
                    done.add(server.name);
                    return;
                  } catch (error) {
                    if (attempt >= 3 || ctx.cancellationSignal.aborted)
                      throw new Error(
                        `upgrade of ${server.name} to ${input.version}: ${(error as Error).message}`,
                      );
                    await ctx.sleep(2_000 * 2 ** (attempt - 1));
                  }
                }
              },
            ),
        );
      } finally {
        clearInterval(beat);
      }
    },

    verifyServers: (input: {
      servers: FleetServer[];
      verify: HttpVerification;
      version: string;
    }): Promise<BulkOutcomes> => {
      const ctx = bulkContext(input.servers.length);
      return settleEach(
        input.servers,
        (server) => server.name,
        async (server) => void (await verifyOne(ctx, deps, server, input.verify, input.version)),
      );
    },
  };
}

/**
 * The activities of a fleet rollout. Each is a desired state ("web-3 is detached", "web-3 runs v2"), so a retry
 * after a crash is harmless.
 */
export function createFleetActivities(deps: ActivityDeps) {
  return {
    /**
     * Checks, before anything changes, that the load balancer answers, knows every server, and that each server
     * answers its health check; returns the version each server runs now (what a rollback returns it to).
     */
    preflightFleet: async (input: {
      loadBalancer: HaproxyLoadBalancer;
      servers: FleetServer[];
      verify: HttpVerification;
    }): Promise<Record<string, string>> => {
      const traffic = deps.trafficFor(input.loadBalancer);
      let known: Set<string>;
      try {
        known = new Set(await traffic.listServers());
      } catch (error) {
        throw ApplicationFailure.nonRetryable(
          `load balancer ${input.loadBalancer.socket} (backend ${input.loadBalancer.backend}): ${(error as Error).message}`,
          failureTypes.preflight,
        );
      }
      const problems: string[] = [];
      const unknown = input.servers.filter((s) => !known.has(s.name)).map((s) => s.name);
      if (unknown.length > 0) {
        problems.push(
          `backend ${input.loadBalancer.backend} has no server named ${unknown.join(', ')} (it has ${[...known].join(', ') || 'none'})`,
        );
      }
      const versions: Record<string, string> = {};
      const probes = await mapLimited(input.servers, 32, async (server) => ({
        server,
        result: await deps.verifier.probe(healthUrl(server, input.verify), input.verify),
      }));
      for (const { server, result } of probes) {
        if (!result.ok || result.version === undefined) {
          problems.push(`${server.name}: ${result.problem ?? 'reports no version'}`);
        } else {
          versions[server.name] = result.version;
        }
      }
      if (problems.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `the fleet is not ready for a rollout:\n${problems.join('\n')}`,
          failureTypes.preflight,
        );
      }
      return versions;
    },

    /** The servers the backend holds now, with their addresses: the fleet of a target Baton provisions. */
    discoverFleet: async (input: { loadBalancer: HaproxyLoadBalancer }): Promise<FleetServer[]> => {
      try {
        return await deps.trafficFor(input.loadBalancer).servers();
      } catch (error) {
        throw ApplicationFailure.nonRetryable(
          `load balancer ${input.loadBalancer.socket} (backend ${input.loadBalancer.backend}): ${(error as Error).message}`,
          failureTypes.preflight,
        );
      }
    },

    /**
     * Creates a server on a version with the spec's create command and adds it to the backend, health checked
     * but taking no request (drain). A retry finds a server the backend already knows and reuses its address;
     * create commands must be idempotent for a name, as hostctl's is.
     */
    createServer: async (input: {
      loadBalancer: LoadBalancerRef;
      provision: FleetProvision;
      name: string;
      version: string;
    }): Promise<FleetServer> => {
      const ctx = Context.current();
      const traffic = await trafficAt(deps, input.loadBalancer);
      const known = (await traffic.servers()).find((s) => s.name === input.name);
      if (known) {
        await traffic.addServer(known.name, known.address, input.provision.serverOptions);
        return known;
      }
      const argv = fillArgv(input.provision.create.argv, { name: input.name, version: input.version });
      let stdout: string;
      try {
        ({ stdout } = await heartbeating(
          ctx,
          deps.hosts.run(argv, { timeoutMs: input.provision.create.timeout, signal: ctx.cancellationSignal }),
        ));
      } catch (error) {
        throw ApplicationFailure.retryable(
          `creating ${input.name} on ${input.version}: ${(error as Error).message}`,
          'CreateFailed',
        );
      }
      const lastLine = stdout.trim().split('\n').at(-1) ?? '';
      const address = createdAddress.safeParse(lastLine);
      if (!address.success)
        throw ApplicationFailure.nonRetryable(
          `${argv.join(' ')} printed "${lastLine.slice(0, 200)}": ${address.error.issues[0]?.message ?? 'not an address'}`,
          'CreateFailed',
        );
      await traffic.addServer(input.name, address.data, input.provision.serverOptions);
      return { name: input.name, address: address.data };
    },

    /** Waits until HAProxy's own health checks pass for a server that takes no request yet. */
    awaitHealthy: async (ref: ServerRef & { timeoutMs: number }): Promise<void> => {
      const ctx = Context.current();
      const traffic = deps.trafficFor(ref.loadBalancer);
      const resumed = ctx.info.heartbeatDetails as { startedAt?: number } | undefined;
      const startedAt = resumed?.startedAt ?? Date.now();
      for (;;) {
        await sameProcess(traffic, ref.loadBalancer);
        const { status } = await traffic.traffic(ref.server);
        // "DRAIN 1/2" is still rising; "DRAIN" alone has passed its checks.
        if (status === 'DRAIN' || status === 'UP' || status === 'no check') return;
        if (Date.now() - startedAt > ref.timeoutMs)
          throw ApplicationFailure.nonRetryable(
            `HAProxy's health checks of ${ref.server} did not pass within ${ref.timeoutMs} ms (status ${status})`,
            failureTypes.verification,
          );
        ctx.heartbeat({ startedAt, status });
        await ctx.sleep(100);
      }
    },

    /** In one Runtime API batch: these servers take requests, those take no new ones. */
    switchTraffic: async (input: {
      loadBalancer: LoadBalancerRef;
      toServe: string[];
      toDrain: string[];
    }): Promise<void> => {
      await (await trafficAt(deps, input.loadBalancer)).switchTraffic(input.toServe, input.toDrain);
    },

    /** Takes a drained server out of the backend for good. */
    removeServer: async (ref: ServerRef): Promise<void> => {
      await (await trafficAt(deps, ref.loadBalancer)).removeServer(ref.server);
    },

    /**
     * Holds what the rollout set at run time while the workflow waits (a pause, a gate, an analysis window, the
     * old set's scale-down delay): every 500 ms it checks which process serves the backend, and puts everything
     * back as soon as a reload forgot it, instead of at the next step, which may be hours away. Runs `forMs`, or
     * until the wait ends and cancels it; returns the process holding the state.
     */
    holdLoadBalancer: async (input: {
      loadBalancer: HaproxyLoadBalancer;
      state: RuntimeState;
      forMs: number;
    }): Promise<{ process: string; restored: string[] }> => {
      const ctx = Context.current();
      const traffic = deps.trafficFor(input.loadBalancer);
      const restore = () => restoreRuntime(traffic, input.loadBalancer, input.state);
      let held = await restore();
      const restored = [...held.restored];
      for (const until = Date.now() + input.forMs; Date.now() < until; ) {
        // Rejects once the workflow's wait is over and the activity is cancelled.
        await ctx.sleep(holdCheckEveryMs);
        ctx.heartbeat();
        if ((await traffic.process()) === held.process) continue;
        held = await restore();
        restored.push(...held.restored);
      }
      return { process: held.process, restored };
    },

    /**
     * Puts back what the rollout set at run time and a reload of the load balancer forgot; returns the process
     * that now holds it, which the rollout's next steps expect.
     */
    restoreLoadBalancer: async (input: {
      loadBalancer: HaproxyLoadBalancer;
      state: RuntimeState;
    }): Promise<{ process: string; restored: string[] }> =>
      restoreRuntime(deps.trafficFor(input.loadBalancer), input.loadBalancer, input.state),

    /** Destroys a server that left the backend, with the spec's destroy command. */
    destroyServer: async (input: {
      provision: FleetProvision;
      server: FleetServer;
      version: string;
    }): Promise<void> => {
      const ctx = Context.current();
      const argv = renderArgv(input.provision.destroy.argv, input.server, input.version);
      try {
        await heartbeating(
          ctx,
          deps.hosts.run(argv, {
            timeoutMs: input.provision.destroy.timeout,
            signal: ctx.cancellationSignal,
          }),
        );
      } catch (error) {
        throw ApplicationFailure.retryable(
          `destroying ${input.server.name}: ${(error as Error).message}`,
          'DestroyFailed',
        );
      }
    },

    detachServer: async (ref: ServerRef): Promise<void> => {
      await (await trafficAt(deps, ref.loadBalancer)).detach(ref.server);
    },

    /**
     * Puts a server back in rotation and waits until the load balancer's own health checks see it UP: only then
     * does it take requests, so the next batch never leaves the pool short (a restarted server is DOWN to
     * HAProxy until `rise` checks pass, seconds after it answers Baton's verification).
     */
    attachServer: async (ref: ServerRef): Promise<void> => {
      const ctx = Context.current();
      const traffic = await trafficAt(deps, ref.loadBalancer);
      await traffic.attach(ref.server);
      for (;;) {
        await sameProcess(traffic, ref.loadBalancer);
        const { status } = await traffic.traffic(ref.server);
        if (/^(UP|no check)/.test(status)) return;
        ctx.heartbeat({ status });
        await ctx.sleep(100);
      }
    },

    /** Sets several servers' weights; each command is idempotent, so a retry after a partial run is harmless. */
    setServerWeights: async (input: {
      loadBalancer: LoadBalancerRef;
      weights: Record<string, number>;
    }): Promise<void> => {
      const traffic = await trafficAt(deps, input.loadBalancer);
      for (const [server, weight] of Object.entries(input.weights)) await traffic.setWeight(server, weight);
    },

    /** One reading of every server's request counters and weight (what a canary analysis compares). */
    sampleFleet: async (input: { loadBalancer: LoadBalancerRef }): Promise<Record<string, ServerSample>> => {
      const traffic = deps.trafficFor(input.loadBalancer);
      const samples = await traffic.counters();
      // Checked after the reading: counters of a process started since the rollout last looked are a reload's,
      // from zero, and a pid never comes back, so one check covers a reload before the reading too.
      await sameProcess(traffic, input.loadBalancer);
      return samples;
    },

    /**
     * Waits until a detached server has no request in flight, heartbeating. A retried attempt resumes the clock
     * of the one before it, so a crash doesn't extend the drain timeout.
     */
    drainServer: async (ref: ServerRef & { policy: DrainPolicy }): Promise<DrainOutcome> => {
      const ctx = Context.current();
      const resumed = ctx.info.heartbeatDetails as { startedAt?: number } | undefined;
      const traffic = await trafficAt(deps, ref.loadBalancer);
      const startedAt = resumed?.startedAt ?? Date.now();
      if (ref.loadBalancer.process === undefined)
        return keptOutOfRotation(traffic, [ref.server], () =>
          drainOne(ctx, traffic, ref.server, ref.policy, startedAt),
        );
      return failingOnReload(traffic, ref.loadBalancer, (check) =>
        drainOne(ctx, traffic, ref.server, ref.policy, startedAt, check),
      );
    },

    /**
     * Moves one server to a version by running the inventory's upgrade command for it. A retried attempt first
     * asks the server its version (through `verify`, when given): a command that already did its work before the
     * worker died or the attempt timed out is not run twice, since a user's upgrade command may not be idempotent.
     */
    upgradeServer: async (input: {
      server: FleetServer;
      upgrade: UpgradeCommand;
      version: string;
      /** The rollout's check; rollouts recorded before it was passed run the command again on a retry. */
      verify?: HttpVerification;
      /** Where the server was detached, to hold it out while it is upgraded; absent in older rollouts. */
      loadBalancer?: LoadBalancerRef;
    }): Promise<void> => {
      const ctx = Context.current();
      const traffic =
        input.loadBalancer && (await trafficThroughOutage(deps, input.loadBalancer, () => ctx.heartbeat()));
      if (ctx.info.attempt > 1 && input.verify) {
        const probe = await deps.verifier.probe(healthUrl(input.server, input.verify), input.verify);
        if (probe.ok && probe.version === input.version) {
          log.info('already on the version: the upgrade command is not run again', {
            server: input.server.name,
            version: input.version,
            attempt: ctx.info.attempt,
          });
          return;
        }
      }
      const argv = renderArgv(input.upgrade.argv, input.server, input.version);
      try {
        await keptOutOfRotation(traffic, [input.server.name], () =>
          heartbeating(
            ctx,
            deps.hosts.run(argv, { timeoutMs: input.upgrade.timeout, signal: ctx.cancellationSignal }),
          ),
        );
      } catch (error) {
        // Retryable: a flaky command is retried by the workflow's upgrade profile before the server counts as failed.
        throw ApplicationFailure.retryable(
          `upgrade of ${input.server.name} to ${input.version}: ${(error as Error).message}`,
          failureTypes.upgrade,
        );
      }
    },

    /**
     * Runs a rollout's hook command (a migration between the versions) on the worker, without a shell. Failing
     * is for good: a half-run migration is for a human to look at, not to run again blindly.
     */
    runHook: async (input: { hook: HookCommand; target: string; version: string }): Promise<void> => {
      const argv = fillArgv(input.hook.argv, { name: input.target, version: input.version });
      try {
        const ctx = Context.current();
        await heartbeating(
          ctx,
          deps.hosts.run(argv, {
            timeoutMs: input.hook.timeout,
            signal: ctx.cancellationSignal,
          }),
        );
      } catch (error) {
        throw ApplicationFailure.nonRetryable(
          `pre-step ${argv.join(' ')}: ${(error as Error).message}`,
          'HookFailed',
        );
      }
    },

    /** Checks the server itself until it passes N times in a row reporting the expected version. */
    verifyServer: (input: { server: FleetServer; verify: HttpVerification; version: string }) =>
      verifyOne(Context.current(), deps, input.server, input.verify, input.version),

    ...createBulkActivities(deps),
  };
}

export type FleetActivities = ReturnType<typeof createFleetActivities>;
