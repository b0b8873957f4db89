import { ApplicationFailure } from '@temporalio/workflow';
import type { CanaryAnalysis, FleetServer, HookCommand } from '../../../spec/rollout';
import type { RolloutSpecStrategy } from '../../registry';
import type { RolloutControl } from '../../control';
import { RolloutAborted } from '../../control';
import type { CompactVersions } from '../../continuation';
import { expandVersions } from '../../continuation';
import type { Lifecycle } from '../../lifecycle';
import { forEachLimited } from '../../limit';
import { canaryWeights, fleetTooLarge, judgeCanary, nextServerNames, oldestFirst } from '../../plan';
import type { RolloutState } from '../../state';
import { failureMessage, RolloutStopped } from '../../stop';
import type { Observation, RolloutTarget, TargetBaseline } from '../target';
import type { FleetRolloutSpec, ForwardStep } from './steps';
import { FleetSteps } from './steps';

/** Analysis windows an analysis step tries before it gives up on HAProxy reloading in each. */
const maxWindowsPerAnalysis = 3;

/** How many servers one step of a whole-fleet change (create, retire, recreate's passes) touches at once. */
const parallel = 50;

/** Strategies that give a fleet new servers rather than upgrading the ones it has. */
export function replacesServers(strategy: RolloutSpecStrategy): boolean {
  return (
    strategy.type === 'surge' ||
    strategy.type === 'blue-green' ||
    (strategy.type === 'rolling' && strategy.method === 'replace')
  );
}

/**
 * A fleet behind HAProxy as a rollout target. In place, a server is taken out of rotation, drained, upgraded,
 * verified and put back; by replacement (a fleet Baton provisions), new servers are created beside the old, and
 * old servers are taken out of rotation but kept alive, health checked, as the way back until the rollout
 * succeeds, then destroyed.
 */
export class FleetRolloutTarget implements RolloutTarget {
  readonly kind = 'fleet';
  readonly surges: boolean;
  spec: FleetRolloutSpec;
  steps: FleetSteps;
  /** The version each server ran at the start. */
  versions: Record<string, string> = {};
  /** Servers still on an old version and not yet touched, in the order they move. */
  private pending: FleetServer[] = [];
  /** Servers on the new version taking requests: the canary's share goes to them. */
  private readonly serving: FleetServer[] = [];

  /** In place: servers the rollout touched, with the furthest step each reached; what the undo puts back. */
  private readonly moved: Array<{ server: FleetServer; reached: ForwardStep }> = [];
  /** In place: servers taken out, waiting to be upgraded and brought back. */
  private readonly out: FleetServer[] = [];
  private restoreParallel = 1;
  /** The weights found before the first traffic shift; set only once a shift begins. */
  private initialWeights?: Record<string, number>;

  /** By replacement: servers made, in creation order, and old ones out of rotation waiting to be destroyed. */
  private readonly created: FleetServer[] = [];
  private readonly idle: FleetServer[] = [];
  private readonly retired: FleetServer[] = [];
  private readonly names: string[];

  constructor(
    spec: FleetRolloutSpec,
    private readonly state: RolloutState,
    private readonly control: RolloutControl,
    private readonly lifecycle: Lifecycle,
  ) {
    this.spec = spec;
    this.surges = replacesServers(spec.strategy);
    this.steps = new FleetSteps(spec, state, control);
    this.names = spec.target.servers.map((s) => s.name);
  }

  get trafficName(): string {
    return this.spec.target.name;
  }

  get servers(): readonly FleetServer[] {
    return this.spec.target.servers;
  }

  /**
   * Finds the fleet (a provisioned one is what its backend holds now: earlier rollouts created and destroyed
   * servers) and the version each server runs. A continued run carries the versions found by the first.
   */
  async preflight(carried?: CompactVersions): Promise<TargetBaseline> {
    if (this.spec.target.provision) await this.discover();
    const versions = carried
      ? expandVersions(
          carried,
          this.servers.map((s) => s.name),
        )
      : await this.lifecycle.preflight(() => this.steps.preflight());
    this.versions = versions;
    await this.steps.watchReloads();
    const version = this.spec.version;
    for (const server of this.servers)
      this.state.update(server.name, { fromVersion: versions[server.name], version: versions[server.name] });
    const old = this.servers.filter((s) => versions[s.name] !== version);
    this.pending = this.surges ? oldestFirst(old) : old;
    for (const server of this.servers) {
      if (old.includes(server)) continue;
      this.state.update(server.name, { step: 'done' });
      this.serving.push(server);
    }
    const first = this.pending[0] ?? this.servers[0];
    const fromVersion = first && versions[first.name];
    if (fromVersion !== undefined) this.state.setFromVersion(fromVersion);
    return { size: this.servers.length, toMove: old.length, label: 'every server' };
  }

  private async discover(): Promise<void> {
    const servers = await this.lifecycle.preflight(() => this.steps.discover());
    const { backend } = this.spec.target.loadBalancer.haproxy;
    if (servers.length === 0) this.lifecycle.reject(`backend ${backend} has no server`);
    const tooLarge = fleetTooLarge(this.spec.strategy, servers.length);
    if (tooLarge) this.lifecycle.reject(`the backend's fleet: ${tooLarge}`);
    for (const server of servers) this.state.addServer(server.name);
    this.spec = { ...this.spec, target: { ...this.spec.target, servers } };
    this.steps = new FleetSteps(this.spec, this.state, this.control);
    // Earlier rollouts added some of them at run time: a reload would forget those too.
    this.steps.expectServers(servers);
    this.names.splice(0, this.names.length, ...servers.map((s) => s.name));
  }

  async replace(units: number, limit: number): Promise<void> {
    const round = this.pending.splice(0, units);
    if (this.surges) {
      const launched = await this.launch(round.length);
      await this.control.checkpoint();
      await this.serve(launched);
      await this.retire(round);
      return;
    }
    this.registerRestore(limit);
    const failures: string[] = [];
    await forEachLimited(round, limit, async (server) => {
      const entry: { server: FleetServer; reached: ForwardStep } = { server, reached: 'attach' };
      this.moved.push(entry);
      const outcome = await this.steps.moveServer(server, this.spec.version);
      if (outcome.ok) {
        this.serving.push(server);
        return;
      }
      entry.reached = outcome.reached;
      if (outcome.aborted) return;
      this.state.failedServers++;
      failures.push(`${server.name} failed: ${outcome.error}`);
    });
    if (failures.length > 0) throw new RolloutStopped(failures.join('; '));
    if (this.control.aborted) throw new RolloutAborted(this.control.abortReason());
  }

  async takeOut(units: number): Promise<void> {
    const round = this.pending.splice(0, units);
    if (this.surges) return this.retire(round);
    this.registerRestore(parallel);
    for (const server of round) this.moved.push({ server, reached: 'detach' });
    await this.everyServer(round, 'detach', (server) => this.steps.detach(server));
    await this.everyServer(round, 'drain', (server) => this.steps.drain(server));
    this.out.push(...round);
  }

  async bringIn(units: number, options: { idle?: boolean } = {}): Promise<void> {
    if (this.surges) {
      const launched = await this.launch(units);
      if (options.idle) this.idle.push(...launched);
      else await this.serve(launched);
      return;
    }
    const round = this.out.splice(0, units);
    const version = this.spec.version;
    await this.everyServer(round, 'upgrade', (server) => this.steps.upgrade(server, version));
    await this.everyServer(round, 'verify', (server) => this.steps.verify(server, version));
    await this.everyServer(round, 'attach', (server) => this.steps.attach(server));
    for (const server of round) this.state.update(server.name, { step: 'done' });
    this.serving.push(...round);
  }

  /** One Runtime API batch sends every request to the new set and none to the old. */
  async switchAll(): Promise<void> {
    if (!this.surges)
      throw ApplicationFailure.nonRetryable('switching all traffic at once needs a fleet Baton provisions');
    const toServe = this.idle.splice(0);
    const toRetire = this.pending.splice(0);
    this.registerReturn();
    this.retired.push(...toRetire);
    await this.steps.switchTraffic(
      toServe,
      toRetire,
      `switch ${this.spec.target.name} to ${this.spec.version}`,
    );
    for (const server of toRetire) this.state.setStep(server.name, 'retired');
    await this.serve(toServe);
  }

  async shiftTraffic(weight: number): Promise<number> {
    this.registerRestore(1);
    await this.readWeights();
    const total = this.servers.length;
    const weights = canaryWeights(total, this.serving.length, weight);
    await this.steps.setWeights(
      Object.fromEntries(
        this.servers.map((s) => [s.name, this.serving.includes(s) ? weights.canary : weights.stable]),
      ),
      `canary ${weight}%`,
    );
    return Math.round(weights.share * 100) / 100;
  }

  async evenTraffic(): Promise<void> {
    if (this.initialWeights) await this.steps.setWeights(this.initialWeights, 'promote: restore weights');
  }

  /**
   * Compares the canary servers' 5xx rate and response time with the stable servers', from HAProxy's counters.
   * A window HAProxy was reloaded in is not judged: its counters started again from zero and, until the weights
   * were put back, the canary had another share. The window starts again, at most twice.
   */
  async observe(analysis: CanaryAnalysis, step: number): Promise<Observation> {
    const canaryNames = this.serving.map((s) => s.name);
    const stableNames = this.servers.filter((s) => !this.serving.includes(s)).map((s) => s.name);
    let before = await this.steps.sample(`analysis ${step}: start`);
    let after: Awaited<ReturnType<FleetSteps['sample']>>;
    let window = 1;
    for (; ; window++) {
      const process = this.steps.loadBalancerProcess;
      await this.control.sleep(analysis.window);
      await this.control.checkpoint();
      after = await this.steps.sample(`analysis ${step}: end`);
      if (this.steps.loadBalancerProcess === process) break;
      if (window === maxWindowsPerAnalysis)
        return {
          passed: false,
          problems: [`HAProxy was reloaded in each of ${window} analysis windows: none could be judged`],
        };
      // The reading that found the reload was taken once the weights were back: the next window starts there.
      before = after;
    }
    const verdict = judgeCanary(analysis, canaryNames, stableNames, before, after);
    return {
      ...(window > 1
        ? { summary: `HAProxy was reloaded during the window: judged on window ${window}, after it` }
        : {}),
      passed: verdict.passed,
      canary: verdict.canary,
      stable: verdict.stable,
      problems: verdict.problems,
    };
  }

  runHook(hook: HookCommand): Promise<void> {
    return this.steps.hook(hook);
  }

  /** The retired servers, drained, leave the backend and are destroyed. */
  async finish(): Promise<void> {
    await forEachLimited(this.retired, parallel, async (server) => {
      await this.steps.drain(server);
      await this.steps.removeAndDestroy(server, this.versions[server.name] ?? this.spec.version);
      this.state.setStep(server.name, 'destroyed');
    });
  }

  private async readWeights(): Promise<Record<string, number>> {
    if (!this.initialWeights) {
      const sample = await this.steps.sample('read weights');
      this.initialWeights = Object.fromEntries(
        this.servers.map((s) => [s.name, sample[s.name]?.weight ?? 1]),
      );
    }
    return this.initialWeights;
  }

  /** Runs one step on every server of a round; the first failure stops the rollout. */
  private async everyServer(
    round: readonly FleetServer[],
    step: ForwardStep,
    run: (server: FleetServer) => Promise<void>,
  ): Promise<void> {
    await this.control.checkpoint();
    const failures: string[] = [];
    await forEachLimited(round, parallel, async (server) => {
      const entry = this.moved.find((m) => m.server === server);
      if (entry) entry.reached = step;
      this.state.setStep(server.name, step);
      try {
        await run(server);
      } catch (error) {
        // Cut short by an abort: left to the rollback, not a failure of the server.
        if (error instanceof RolloutAborted) return;
        this.state.update(server.name, { step: 'failed', error: failureMessage(error) });
        failures.push(`${server.name}: ${failureMessage(error)}`);
      }
    });
    if (failures.length > 0) throw new RolloutStopped(`${step} failed on ${failures.join('; ')}`);
    if (this.control.aborted) throw new RolloutAborted(this.control.abortReason());
  }

  /**
   * In place, the way back: the canary's share drops first (if weights were set), then each server the rollout
   * touched goes back to the version it had, newest first, through the same steps; then the weights found at
   * the start are set again.
   */
  private registerRestore(limit: number): void {
    this.restoreParallel = Math.max(this.restoreParallel, limit);
    this.lifecycle.onUndo('servers back on their old version', async () => {
      const moved = this.moved.map((m) => m.server.name);
      const total = this.servers.length;
      if (this.initialWeights && moved.length > 0 && moved.length < total)
        await this.steps.setWeights(
          Object.fromEntries(this.servers.map((s) => [s.name, moved.includes(s.name) ? 1 : 256])),
          'rollback: canary to the least weight',
        );
      this.state.setCanary({ weight: 0 });
      const problems: string[] = [];
      await forEachLimited([...this.moved].reverse(), this.restoreParallel, async ({ server, reached }) => {
        const restored = await this.steps.restoreServer(server, reached);
        if (!restored.ok) problems.push(`${server.name}: ${restored.error}`);
      });
      if (this.initialWeights) await this.steps.setWeights(this.initialWeights, 'rollback: restore weights');
      if (problems.length > 0) throw new Error(problems.join('; '));
    });
  }

  /** Creates `count` servers on the new version, each verified and seen healthy by HAProxy, taking no request. */
  private async launch(count: number): Promise<FleetServer[]> {
    this.lifecycle.onUndo('new servers destroyed', async () => {
      await forEachLimited(this.created, parallel, async (server) => {
        this.state.setStep(server.name, 'restoring');
        await this.steps.detach(server);
        await this.steps.drain(server);
        await this.steps.removeAndDestroy(server, this.spec.version);
        this.state.setStep(server.name, 'destroyed');
      });
    });
    const version = this.spec.version;
    const names = nextServerNames(this.names, count, this.spec.target.name);
    this.names.push(...names);
    const launched: FleetServer[] = [];
    const failures: string[] = [];
    await forEachLimited(names, parallel, async (name) => {
      this.state.addServer(name, { step: 'create', version });
      try {
        const server = await this.steps.create(name, version);
        this.created.push(server);
        this.state.setStep(name, 'verify');
        await this.steps.verify(server, version);
        await this.steps.awaitHealthy(server);
        this.state.setStep(name, 'pending');
        launched.push(server);
      } catch (error) {
        this.state.update(name, { step: 'failed', error: failureMessage(error) });
        failures.push(`${name}: ${failureMessage(error)}`);
      }
    });
    if (failures.length > 0) throw new RolloutStopped(`creating servers failed: ${failures.join('; ')}`);
    return names.flatMap((name) => launched.filter((s) => s.name === name));
  }

  /** Puts new servers in rotation, each once HAProxy sees it UP. */
  private async serve(servers: readonly FleetServer[]): Promise<void> {
    await forEachLimited(servers, parallel, async (server) => {
      this.state.setStep(server.name, 'attach');
      await this.steps.attach(server);
      this.serving.push(server);
      this.state.setStep(server.name, 'done');
    });
  }

  /** Takes old servers out of rotation and waits until each has no request in flight. */
  private async retire(servers: readonly FleetServer[]): Promise<void> {
    this.registerReturn();
    await forEachLimited(servers, parallel, async (server) => {
      this.state.setStep(server.name, 'detach');
      await this.steps.detach(server);
      this.retired.push(server);
      this.state.setStep(server.name, 'drain');
      await this.steps.drain(server);
      this.state.setStep(server.name, 'retired');
    });
  }

  /** By replacement, the way back: the retired servers serve again in one batch, the new ones none. */
  private registerReturn(): void {
    this.lifecycle.onUndo('old servers back in rotation', async () => {
      if (this.retired.length === 0) return;
      await this.steps.switchTraffic(this.retired, this.created, `switch ${this.spec.target.name} back`);
      await forEachLimited(this.retired, parallel, async (server) => {
        await this.steps.attach(server);
        this.state.setStep(server.name, 'restored');
      });
    });
  }
}
