import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  log,
  proxyActivities,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type { BulkOutcomes, FleetActivities, LoadBalancerRef } from '../../../activities/fleet-activities';
import type { RuntimeState, ServerSample } from '../../../activities/ports';
import type {
  FleetServer,
  FleetTarget,
  HookCommand,
  HttpVerification,
  RolloutSpec,
} from '../../../spec/rollout';
import type { ServerStep } from '../../messages';
import {
  attachProfile,
  drainProfile,
  loadBalancerProfile,
  localAttachProfile,
  localLoadBalancerProfile,
  preflightProfile,
  upgradeProfile,
  verifyProfile,
} from '../../profiles';
import type { RolloutControl } from '../../control';
import { RolloutAborted } from '../../control';
import type { RolloutState } from '../../state';
import { failureMessage } from '../../stop';
import { loadBalancerReloaded } from '../../../spec/failure-types';

/** A fleet's spec always has verify.http: its default checks each server's health and version. */
export type FleetRolloutSpec = RolloutSpec & { target: FleetTarget; verify: { http: HttpVerification } };

/** The step a server had started when it stopped: tells a restore what there is to undo. */
export type ForwardStep = Extract<ServerStep, 'detach' | 'drain' | 'upgrade' | 'verify' | 'attach'>;

/** `aborted`: an abort cut the step short; the server is left to the rollback, not counted as failed. */
export type StepOutcome =
  | { ok: true }
  | { ok: false; reached: ForwardStep; error: string; aborted?: boolean };

/** How a group meets its neighbours: the load balancer steps between two groups can be one command. */
export interface GroupHandover {
  /** The group was taken out of rotation by the command that brought the previous one back. */
  readonly detached?: boolean;
  /**
   * Asked once every server of the group passed verification: the next group, if it may start now, to take out
   * of rotation in the command that brings this one back.
   */
  readonly next?: () => readonly FleetServer[] | undefined;
}

export interface GroupMove {
  readonly outcomes: Array<{ server: FleetServer; outcome: StepOutcome }>;
  /**
   * Set when the handover started the next group: out of rotation when `detached`; when not, the handover failed
   * and so did bringing it back, so it may be out.
   */
  readonly handedOver?: { readonly detached: boolean };
}

/** Rollouts started since have their load balancer's runtime state put back after a reload. */
export const reloadsRestored = 'load-balancer-reloads-restored';

/** Reloads in a row a step sits through before it fails: a configuration management run is one. */
const reloadsPerStep = 5;

/** One activity of holding the load balancer lasts this long; a longer wait runs the next. */
const holdChunkMs = 10 * 60_000;

const acts = proxyActivities<FleetActivities>(loadBalancerProfile);
const localActs = proxyLocalActivities<FleetActivities>(localLoadBalancerProfile);

/** "web-1" for one server, "3 servers (web-1 … web-3)" for a group, as step summaries name them. */
export function describeGroup(servers: readonly FleetServer[]): string {
  if (servers.length === 1) return servers[0]?.name ?? '';
  return `${servers.length} servers (${servers[0]?.name ?? ''} … ${servers.at(-1)?.name ?? ''})`;
}

/**
 * The five steps of one fleet server, each one activity carrying a summary for the Temporal UI
 * ("drain web-3"), plus the inverse that puts a server back on the version it had.
 */
export class FleetSteps {
  private readonly haproxy;
  /**
   * The HAProxy process that held everything the rollout set at run time when last looked at; each step expects
   * it. Undefined in rollouts recorded before reloads were watched for.
   */
  private process: string | undefined;
  /** What the rollout set on the backend at run time: what a reload forgets and `restoreLoadBalancer` puts back. */
  private readonly runtime = {
    drained: new Set<string>(),
    serving: new Set<string>(),
    added: new Map<string, string>(),
    removed: new Set<string>(),
    weights: {} as Record<string, number>,
  };

  constructor(
    private readonly spec: FleetRolloutSpec,
    private readonly state: RolloutState,
    private readonly control: RolloutControl,
  ) {
    this.haproxy = spec.target.loadBalancer.haproxy;
  }

  /** The load balancer as the next step names it: with the process it expects. */
  private get lb(): LoadBalancerRef {
    return this.process === undefined ? this.haproxy : { ...this.haproxy, process: this.process };
  }

  /**
   * Learns which HAProxy process serves the backend, so that every later step can tell a reload, and holds the
   * rollout's runtime state through the workflow's own waits.
   */
  async watchReloads(): Promise<void> {
    if (!this.control.patches.has(reloadsRestored)) return;
    await this.restoreLoadBalancer();
    this.control.holdWhileWaiting((wait) => this.holdWhile(wait));
  }

  /**
   * Runs the workflow's wait with an activity beside it that puts the runtime state back whenever HAProxy is
   * reloaded meanwhile; the activity is cancelled when the wait ends. Should holding fail (HAProxy unreachable for
   * longer than its retries), the wait goes on, and the next step finds the reload.
   */
  private async holdWhile<T>(wait: () => Promise<T>): Promise<T> {
    let waiting = true;
    const scope = new CancellationScope();
    const holding = scope
      .run(async () => {
        while (waiting) {
          const held = await acts.holdLoadBalancer.executeWithOptions(
            {
              ...loadBalancerProfile,
              startToCloseTimeout: holdChunkMs + 60_000,
              // The wait's end reaches the activity with a heartbeat's answer, which the worker sends at most
              // every 0.8 heartbeat timeouts; the steps after it wait for the activity to stop, since one still
              // holding would put back a state those steps change.
              heartbeatTimeout: '1s',
              cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
              summary: `hold ${this.haproxy.backend} as the rollout set it while waiting`,
            },
            [{ loadBalancer: this.haproxy, state: this.runtimeState(), forMs: holdChunkMs }],
          );
          this.process = held.process;
        }
      })
      .catch((error: unknown) => {
        if (waiting)
          log.warn('could not hold the load balancer while waiting', { error: failureMessage(error) });
      });
    try {
      return await wait();
    } finally {
      waiting = false;
      scope.cancel();
      await holding;
    }
  }

  /** The load balancer's process changes from one reading to the next only when it was reloaded. */
  get loadBalancerProcess(): string | undefined {
    return this.process;
  }

  private runtimeState(): RuntimeState {
    return {
      added: [...this.runtime.added].map(([name, address]) => ({ name, address })),
      addOptions: this.spec.target.provision?.serverOptions ?? [],
      drained: [...this.runtime.drained],
      serving: [...this.runtime.serving],
      removed: [...this.runtime.removed],
      weights: this.runtime.weights,
    };
  }

  private async restoreLoadBalancer(): Promise<void> {
    const { process } = await acts.restoreLoadBalancer.executeWithOptions(
      {
        ...loadBalancerProfile,
        summary:
          this.process === undefined
            ? `read which HAProxy process serves ${this.haproxy.backend}`
            : `put back what HAProxy forgot on reload (${this.haproxy.backend})`,
      },
      [{ loadBalancer: this.haproxy, state: this.runtimeState() }],
    );
    this.process = process;
  }

  /**
   * Runs a load balancer step; when it finds HAProxy reloaded, puts back what the rollout had set at run time
   * first (drains, weights, added servers) and runs the step again.
   */
  private async onLoadBalancer<T>(step: () => Promise<T>): Promise<T> {
    for (let reloads = 0; ; reloads++) {
      try {
        return await step();
      } catch (error) {
        if (this.process === undefined || reloads >= reloadsPerStep || !isReload(error)) throw error;
        await this.restoreLoadBalancer();
      }
    }
  }

  preflight(): Promise<Record<string, string>> {
    return acts.preflightFleet.executeWithOptions(
      { ...preflightProfile, summary: `preflight ${this.spec.target.name}` },
      [{ loadBalancer: this.lb, servers: this.spec.target.servers, verify: this.spec.verify.http }],
    );
  }

  /** Detach, drain, upgrade, verify, attach; stops at the first step that fails and says which. */
  async moveServer(server: FleetServer, version: string): Promise<StepOutcome> {
    let reached: ForwardStep = 'detach';
    const enter = (step: ForwardStep) => {
      reached = step;
      this.state.setStep(server.name, step);
    };
    try {
      enter('detach');
      await this.detach(server);
      enter('drain');
      await this.drain(server);
      enter('upgrade');
      await this.upgrade(server, version);
      enter('verify');
      await this.verify(server, version);
      enter('attach');
      await this.attach(server);
      this.state.update(server.name, { step: 'done' });
      return { ok: true };
    } catch (error) {
      const message = failureMessage(error);
      if (error instanceof RolloutAborted) return { ok: false, reached, error: message, aborted: true };
      this.state.update(server.name, { step: 'failed', error: message });
      return { ok: false, reached, error: message };
    }
  }

  /**
   * The same five steps for a group of servers together, one activity per step for the whole group: for
   * batches of many servers, where one activity per server and step would cost thousands of history events.
   * A server whose drain, upgrade or verification fails leaves the group with its outcome; the others go on.
   */
  async moveServers(
    servers: readonly FleetServer[],
    version: string,
    handover: GroupHandover = {},
  ): Promise<GroupMove> {
    const results = new Map<string, StepOutcome>();
    let moving = [...servers];
    const enter = (step: ForwardStep) => {
      for (const server of moving) this.state.setStep(server.name, step);
      return step;
    };
    const drop = (failed: BulkOutcomes, reached: ForwardStep) => {
      for (const server of moving) {
        const error = failed[server.name];
        if (error === undefined) continue;
        this.state.update(server.name, { step: 'failed', error });
        results.set(server.name, { ok: false, reached, error });
      }
      moving = moving.filter((server) => !results.has(server.name));
    };
    const all = (reached: ForwardStep, error: unknown) => {
      if (!(error instanceof RolloutAborted))
        return drop(
          Object.fromEntries(moving.map((server) => [server.name, failureMessage(error)])),
          reached,
        );
      for (const server of moving)
        results.set(server.name, { ok: false, reached, error: error.message, aborted: true });
      moving = [];
    };
    const names = () => moving.map((server) => server.name);
    const group = () => describeGroup(moving);
    // Runtime API commands of milliseconds: they run inside the workflow task that follows a step.
    const loadBalancer = (command: 'detachServers' | 'attachServers', summary: string) => {
      this.outOfRotation(command === 'detachServers', names());
      return this.onLoadBalancer(() =>
        localActs[command].executeWithOptions(
          { ...(command === 'attachServers' ? localAttachProfile : localLoadBalancerProfile), summary },
          [{ loadBalancer: this.lb, servers: names() }],
        ),
      );
    };
    let handedOver: GroupMove['handedOver'];
    let step: ForwardStep = enter('detach');
    try {
      if (!handover.detached) await loadBalancer('detachServers', `detach ${group()}`);
      step = enter('drain');
      const drained = await this.control.cancelOnAbort(() =>
        this.onLoadBalancer(() =>
          acts.drainServers.executeWithOptions(
            { ...drainProfile(this.spec.drain), summary: `drain ${group()}` },
            [{ loadBalancer: this.lb, servers: names(), policy: this.spec.drain }],
          ),
        ),
      );
      for (const name of drained.forced) this.state.update(name, { drainForced: true });
      drop(drained.failed, 'drain');
      step = enter('upgrade');
      const upgrade = this.spec.target.upgrade;
      if (!upgrade)
        throw ApplicationFailure.nonRetryable('target.upgrade: no upgrade command', 'PreflightFailed');
      if (moving.length > 0) {
        const upgraded = await this.onLoadBalancer(() =>
          acts.upgradeServers.executeWithOptions(
            {
              // Each server's command gets its three tries within the one activity.
              ...upgradeProfile(3 * upgrade.timeout + 6_000),
              summary: `upgrade ${group()} to ${version}`,
            },
            [{ servers: moving, upgrade, version, verify: this.spec.verify.http, loadBalancer: this.lb }],
          ),
        );
        drop(upgraded, 'upgrade');
        for (const server of moving) this.state.update(server.name, { version });
      }
      step = enter('verify');
      if (moving.length > 0) {
        const check = this.spec.verify.http;
        const verified = await this.control.cancelOnAbort(() =>
          acts.verifyServers.executeWithOptions(
            { ...verifyProfile(check), summary: `verify ${group()} run ${version}` },
            [{ servers: moving, verify: check, version }],
          ),
        );
        drop(verified, 'verify');
      }
      step = enter('attach');
      // Every server passed: the next group may leave rotation in the command that brings this one back.
      const next = moving.length === servers.length ? handover.next?.() : undefined;
      if (next && next.length > 0) {
        // Set first: should even the fallback attach fail, the next group may be out and counts as started.
        handedOver = { detached: false };
        const summary = `attach ${group()}, then detach ${describeGroup(next)}`;
        handedOver = (await this.handOver(moving, next, summary)) ? { detached: true } : undefined;
      } else if (moving.length > 0) await loadBalancer('attachServers', `attach ${group()}`);
      for (const server of moving) {
        this.state.update(server.name, { step: 'done' });
        results.set(server.name, { ok: true });
      }
    } catch (error) {
      all(step, error);
    }
    return {
      outcomes: servers.map((server) => ({ server, outcome: results.get(server.name) ?? { ok: true } })),
      ...(handedOver ? { handedOver } : {}),
    };
  }

  /**
   * Brings a group back into rotation and takes the next one out, as one local activity; true when both happened.
   * Should that fail, both groups are brought back into rotation (false): the next one has not started. Should
   * that fail too, it is this group's failure to attach, and the next group may be out.
   */
  private async handOver(
    group: readonly FleetServer[],
    next: readonly FleetServer[],
    summary: string,
  ): Promise<boolean> {
    for (const server of next) this.state.setStep(server.name, 'detach');
    const attach = group.map((server) => server.name);
    const detach = next.map((server) => server.name);
    try {
      this.outOfRotation(false, attach);
      this.outOfRotation(true, detach);
      await this.onLoadBalancer(() =>
        localActs.handOverServers.executeWithOptions({ ...localAttachProfile, summary }, [
          { loadBalancer: this.lb, attach, detach },
        ]),
      );
      return true;
    } catch {
      this.outOfRotation(false, [...attach, ...detach]);
      await this.onLoadBalancer(() =>
        localActs.attachServers.executeWithOptions(
          { ...localAttachProfile, summary: `attach ${describeGroup(group)} and ${describeGroup(next)}` },
          [{ loadBalancer: this.lb, servers: [...attach, ...detach] }],
        ),
      );
      for (const server of next) this.state.setStep(server.name, 'pending');
      return false;
    }
  }

  /**
   * Puts a server back on the version it ran before the rollout, dropping no request: a server that was never
   * upgraded only needs attaching; one that was goes through the same five steps towards its old version.
   */
  async restoreServer(server: FleetServer, reached: ForwardStep): Promise<StepOutcome> {
    const fromVersion = this.state.server(server.name).fromVersion;
    this.state.update(server.name, { step: 'restoring' });
    try {
      if (reached === 'detach' || reached === 'drain') {
        await this.attach(server);
      } else {
        if (fromVersion === undefined)
          throw ApplicationFailure.nonRetryable(`no known previous version for ${server.name}`);
        await this.detach(server);
        await this.drain(server);
        await this.upgrade(server, fromVersion);
        await this.verify(server, fromVersion);
        await this.attach(server);
      }
      this.state.update(server.name, { step: 'restored' });
      return { ok: true };
    } catch (error) {
      const message = failureMessage(error);
      this.state.update(server.name, { step: 'failed', error: `restore failed: ${message}` });
      return { ok: false, reached, error: message };
    }
  }

  /** The spec's pre-step, once, between the old version stopping and the new one starting. */
  hook(hook: HookCommand): Promise<void> {
    return acts.runHook.executeWithOptions(
      {
        ...upgradeProfile(hook.timeout),
        retry: { maximumAttempts: 1 },
        summary: `pre-step ${hook.argv[0] ?? ''}`,
      },
      [{ hook, target: this.spec.target.name, version: this.spec.version }],
    );
  }

  /** The servers the backend holds: the fleet of a target Baton provisions. */
  discover(): Promise<FleetServer[]> {
    return acts.discoverFleet.executeWithOptions(
      { ...preflightProfile, summary: `discover ${this.spec.target.name}` },
      [{ loadBalancer: this.lb }],
    );
  }

  /** Creates a server on a version and adds it to the backend, health checked, taking no request yet. */
  async create(name: string, version: string): Promise<FleetServer> {
    const provision = this.requireProvision();
    // A new server takes no request until it is attached.
    this.outOfRotation(true, [name]);
    const server = await this.onLoadBalancer(() =>
      acts.createServer.executeWithOptions(
        { ...upgradeProfile(provision.create.timeout), summary: `create ${name} on ${version}` },
        [{ loadBalancer: this.lb, provision, name, version }],
      ),
    );
    this.runtime.added.set(server.name, server.address);
    return server;
  }

  /** Waits until HAProxy's health checks pass for a server that takes no request yet. */
  awaitHealthy(server: FleetServer): Promise<void> {
    return this.control.cancelOnAbort(() =>
      this.onLoadBalancer(() =>
        acts.awaitHealthy.executeWithOptions(
          { ...attachProfile, summary: `wait for HAProxy to see ${server.name} healthy` },
          [{ ...this.ref(server), timeoutMs: this.spec.verify.http.timeout }],
        ),
      ),
    );
  }

  /** One Runtime API batch: `toServe` take requests, `toDrain` take no new ones. */
  switchTraffic(
    toServe: readonly FleetServer[],
    toDrain: readonly FleetServer[],
    summary: string,
  ): Promise<void> {
    const serve = toServe.map((s) => s.name);
    const drain = toDrain.map((s) => s.name);
    this.outOfRotation(false, serve);
    this.outOfRotation(true, drain);
    return this.onLoadBalancer(() =>
      acts.switchTraffic.executeWithOptions({ ...loadBalancerProfile, summary }, [
        { loadBalancer: this.lb, toServe: serve, toDrain: drain },
      ]),
    );
  }

  /** Takes a drained server out of the backend, then destroys it. */
  async removeAndDestroy(server: FleetServer, version: string): Promise<void> {
    const provision = this.requireProvision();
    this.runtime.added.delete(server.name);
    this.runtime.drained.delete(server.name);
    this.runtime.serving.delete(server.name);
    this.runtime.removed.add(server.name);
    await this.onLoadBalancer(() =>
      acts.removeServer.executeWithOptions(
        { ...loadBalancerProfile, summary: `remove ${server.name} from the backend` },
        [this.ref(server)],
      ),
    );
    await acts.destroyServer.executeWithOptions(
      { ...upgradeProfile(provision.destroy.timeout), summary: `destroy ${server.name}` },
      [{ provision, server, version }],
    );
  }

  private requireProvision() {
    const provision = this.spec.target.provision;
    // The spec requires it for every strategy that creates servers; this guards a hand-made input.
    if (!provision) throw ApplicationFailure.nonRetryable('target.provision: no create or destroy command');
    return provision;
  }

  /** Sets load balancer weights, e.g. a canary's share; the summary says what for ("canary 25%"). */
  setWeights(weights: Record<string, number>, summary: string): Promise<void> {
    Object.assign(this.runtime.weights, weights);
    return this.onLoadBalancer(() =>
      acts.setServerWeights.executeWithOptions({ ...loadBalancerProfile, summary }, [
        { loadBalancer: this.lb, weights },
      ]),
    );
  }

  /** One reading of every server's request counters and weight. */
  sample(summary: string): Promise<Record<string, ServerSample>> {
    return this.onLoadBalancer(() =>
      acts.sampleFleet.executeWithOptions({ ...loadBalancerProfile, summary }, [{ loadBalancer: this.lb }]),
    );
  }

  /** Servers the backend must hold, with their addresses, whether or not its configuration file lists them. */
  expectServers(servers: readonly FleetServer[]): void {
    for (const server of servers) this.runtime.added.set(server.name, server.address);
  }

  /** Records which servers the rollout holds out of rotation (drain), for a reload to be undone. */
  private outOfRotation(out: boolean, servers: readonly string[]): void {
    for (const name of servers) {
      if (out) {
        this.runtime.drained.add(name);
        this.runtime.serving.delete(name);
      } else {
        this.runtime.drained.delete(name);
        this.runtime.serving.add(name);
      }
    }
  }

  private ref(server: FleetServer) {
    return { loadBalancer: this.lb, server: server.name };
  }

  detach(server: FleetServer): Promise<void> {
    this.outOfRotation(true, [server.name]);
    return this.onLoadBalancer(() =>
      acts.detachServer.executeWithOptions({ ...loadBalancerProfile, summary: `detach ${server.name}` }, [
        this.ref(server),
      ]),
    );
  }

  attach(server: FleetServer): Promise<void> {
    this.outOfRotation(false, [server.name]);
    return this.onLoadBalancer(() =>
      acts.attachServer.executeWithOptions({ ...attachProfile, summary: `attach ${server.name}` }, [
        this.ref(server),
      ]),
    );
  }

  async drain(server: FleetServer): Promise<void> {
    const outcome = await this.control.cancelOnAbort(() =>
      this.onLoadBalancer(() =>
        acts.drainServer.executeWithOptions(
          { ...drainProfile(this.spec.drain), summary: `drain ${server.name}` },
          [{ ...this.ref(server), policy: this.spec.drain }],
        ),
      ),
    );
    if (!outcome.drained) this.state.update(server.name, { drainForced: true });
  }

  async upgrade(server: FleetServer, version: string): Promise<void> {
    const upgrade = this.spec.target.upgrade;
    // The spec requires it for every strategy that upgrades in place; this guards a hand-made input.
    if (!upgrade)
      throw ApplicationFailure.nonRetryable('target.upgrade: no upgrade command', 'PreflightFailed');
    await this.onLoadBalancer(() =>
      acts.upgradeServer.executeWithOptions(
        { ...upgradeProfile(upgrade.timeout), summary: `upgrade ${server.name} to ${version}` },
        [{ server, upgrade, version, verify: this.spec.verify.http, loadBalancer: this.lb }],
      ),
    );
    this.state.update(server.name, { version });
  }

  async verify(server: FleetServer, version: string): Promise<void> {
    await this.control.cancelOnAbort(() =>
      acts.verifyServer.executeWithOptions(
        { ...verifyProfile(this.spec.verify.http), summary: `verify ${server.name} runs ${version}` },
        [{ server, verify: this.spec.verify.http, version }],
      ),
    );
  }
}

function isReload(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === loadBalancerReloaded
  );
}
