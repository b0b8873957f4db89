import type { BlueGreenStrategy, FleetServer, RolloutPause } from '../../spec/rollout';
import type { RolloutControl } from '../control';
import { RolloutAborted } from '../control';
import type { FleetRolloutSpec, FleetSteps } from '../fleet-steps';
import { failureMessage } from '../fleet-steps';
import { forEachLimited } from '../limit';
import type { RolloutResult } from '../messages';
import { pauseAfter } from '../pauses';
import type { Quantity } from '../plan';
import { nextServerNames, oldestFirst, planBatches } from '../plan';
import type { RolloutState } from '../state';
import { preflightOrReject, rollBack } from './outcome';

/** How many servers are created, attached or retired at once. */
const parallel = 10;

/**
 * The servers a replacing rollout has made and the ones it has taken out of rotation. Old servers are not
 * destroyed until the rollout succeeds: drained but alive and health checked, they are the way back, so any
 * failure or abort is undone by putting them back in rotation in one batch and removing the new ones.
 */
class FleetReplacement {
  /** New servers, in creation order, and whether each takes requests yet. */
  private readonly created: Array<{ server: FleetServer; serving: boolean }> = [];
  /** Old servers out of rotation, waiting to be destroyed. */
  private readonly retired: FleetServer[] = [];
  private readonly names: string[];

  constructor(
    private readonly spec: FleetRolloutSpec,
    private readonly state: RolloutState,
    private readonly steps: FleetSteps,
    private readonly fromVersion: string,
  ) {
    this.names = spec.target.servers.map((s) => s.name);
  }

  /** Creates `count` servers on the new version, each health checked by HAProxy and verified, taking no request. */
  async launch(count: number): Promise<FleetServer[]> {
    const names = nextServerNames(this.names, count, this.spec.target.name);
    this.names.push(...names);
    const launched: FleetServer[] = [];
    const failures: string[] = [];
    await forEachLimited(names, parallel, async (name) => {
      this.state.addServer(name, { step: 'create', version: this.spec.version });
      try {
        const server = await this.steps.create(name, this.spec.version);
        this.created.push({ server, serving: false });
        this.state.setStep(name, 'verify');
        await this.steps.verify(server, this.spec.version);
        await this.steps.awaitHealthy(server);
        this.state.setStep(name, 'pending');
        launched.push(server);
      } catch (error) {
        this.state.update(name, { step: 'failed', error: failureMessage(error) });
        failures.push(`${name}: ${failureMessage(error)}`);
      }
    });
    if (failures.length > 0) throw new Error(`creating servers failed: ${failures.join('; ')}`);
    return names.flatMap((name) => launched.filter((s) => s.name === name));
  }

  /** Puts new servers in rotation, each once HAProxy sees it UP. */
  async serve(servers: readonly FleetServer[]): Promise<void> {
    await forEachLimited(servers, parallel, async (server) => {
      this.state.setStep(server.name, 'attach');
      await this.steps.attach(server);
      this.markServing(server);
      this.state.setStep(server.name, 'done');
    });
  }

  /** Takes old servers out of rotation and waits until each has no request in flight. */
  async retire(servers: readonly FleetServer[]): Promise<void> {
    await forEachLimited(servers, parallel, async (server) => {
      this.state.setStep(server.name, 'detach');
      await this.steps.detach(server);
      this.retired.push(server);
      this.state.setStep(server.name, 'drain');
      await this.steps.drain(server);
      this.state.setStep(server.name, 'retired');
    });
  }

  /** Blue/green's switch: one Runtime API batch sends every request to the new set and none to the old. */
  async switchAll(toServe: readonly FleetServer[], toRetire: readonly FleetServer[]): Promise<void> {
    this.retired.push(...toRetire);
    await this.steps.switchTraffic(
      toServe,
      toRetire,
      `switch ${this.spec.target.name} to ${this.spec.version}`,
    );
    for (const server of toServe) this.markServing(server);
    for (const server of toRetire) this.state.setStep(server.name, 'retired');
    await this.serve(toServe);
  }

  /** After success: the retired servers, drained, leave the backend and are destroyed. */
  async destroyRetired(): Promise<void> {
    await forEachLimited(this.retired, parallel, async (server) => {
      await this.steps.drain(server);
      await this.steps.removeAndDestroy(server, this.fromVersion);
      this.state.setStep(server.name, 'destroyed');
    });
  }

  /** The way back: the retired servers serve again in one batch, then every new server is drained and destroyed. */
  async undo(): Promise<void> {
    const created = this.created.map((c) => c.server);
    if (this.retired.length > 0) {
      await this.steps.switchTraffic(this.retired, created, `switch ${this.spec.target.name} back`);
      await forEachLimited(this.retired, parallel, async (server) => {
        await this.steps.attach(server);
        this.state.setStep(server.name, 'restored');
      });
    }
    await forEachLimited(created, parallel, async (server) => {
      this.state.setStep(server.name, 'restoring');
      await this.steps.detach(server);
      await this.steps.drain(server);
      await this.steps.removeAndDestroy(server, this.spec.version);
      this.state.setStep(server.name, 'destroyed');
    });
  }

  private markServing(server: FleetServer): void {
    const entry = this.created.find((c) => c.server.name === server.name);
    if (entry) entry.serving = true;
  }
}

/** Preflight shared by the replacing strategies: every old server answers, and the version it runs. */
async function begin(spec: FleetRolloutSpec, state: RolloutState, steps: FleetSteps) {
  const versions = await preflightOrReject(state, () => steps.preflight());
  for (const server of spec.target.servers)
    state.update(server.name, { fromVersion: versions[server.name], version: versions[server.name] });
  const old = oldestFirst(spec.target.servers.filter((s) => versions[s.name] !== spec.version));
  const fromVersion = (old[0] && versions[old[0].name]) ?? spec.version;
  state.setFromVersion(fromVersion);
  for (const server of spec.target.servers)
    if (!old.includes(server)) state.update(server.name, { step: 'done' });
  return { old, replacement: new FleetReplacement(spec, state, steps, fromVersion) };
}

async function end(
  spec: FleetRolloutSpec,
  state: RolloutState,
  replacement: FleetReplacement,
  stopReason: string | undefined,
): Promise<RolloutResult> {
  if (stopReason === undefined) {
    await replacement.destroyRetired();
    state.setPhase('succeeded');
    return { phase: 'succeeded', toVersion: spec.version, servers: state.status().servers };
  }
  await rollBack(state, stopReason, () => replacement.undo());
  return {
    phase: 'rolled-back',
    reason: stopReason,
    toVersion: spec.version,
    servers: state.status().servers,
  };
}

const stopReasonOf = (error: unknown) =>
  error instanceof RolloutAborted ? error.message : failureMessage(error);

/**
 * Surge then retire oldest, on a fleet Baton provisions: a round creates as many new servers as its batch (all
 * of the old ones by default: the fleet doubles), verifies them and puts them in rotation, then takes the same
 * number of the oldest servers out. Rolling by replacement is the same with a small batch. Retired servers are
 * destroyed when the rollout succeeds; until then any failure or abort puts them back and removes the new ones.
 */
export async function surgeFleetStrategy(
  spec: FleetRolloutSpec,
  state: RolloutState,
  steps: FleetSteps,
  control: RolloutControl,
  options: { batchSize: Quantity; pauses?: readonly RolloutPause[]; pauseBetweenBatches?: number },
): Promise<RolloutResult> {
  const { old, replacement } = await begin(spec, state, steps);
  const rounds = planBatches(old, options.batchSize);
  state.batches = rounds.length;
  state.setPhase('progressing');
  let stopReason: string | undefined;
  try {
    for (const [index, round] of rounds.entries()) {
      state.batch = index + 1;
      await control.checkpoint();
      const launched = await replacement.launch(round.length);
      await control.checkpoint();
      await replacement.serve(launched);
      await replacement.retire(round);
      if (index < rounds.length - 1) {
        const stop = await pauseAfter(control, options.pauses, index + 1, `batch ${index + 1}`);
        if (stop !== undefined) throw new RolloutAborted(stop);
        if (options.pauseBetweenBatches) await control.sleep(options.pauseBetweenBatches);
      }
    }
    await control.checkpoint();
  } catch (error) {
    stopReason = stopReasonOf(error);
  }
  return end(spec, state, replacement, stopReason);
}

/**
 * Blue/green on a fleet Baton provisions: a whole new set on the new version joins the backend taking no
 * request, health checked by HAProxy and verified directly at each server's own address (the preview); then,
 * automatically or at `promote`, one Runtime API batch sends all requests to it and none to the old set. The old
 * set stays, drained but alive, for scaleDownDelay as the instant way back, then is destroyed.
 */
export async function blueGreenFleetStrategy(
  spec: FleetRolloutSpec & { strategy: BlueGreenStrategy },
  state: RolloutState,
  steps: FleetSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const { old, replacement } = await begin(spec, state, steps);
  state.batches = 1;
  state.batch = 1;
  if (old.length === 0) {
    state.setPhase('succeeded', `every server already runs ${spec.version}`);
    return { phase: 'succeeded', toVersion: spec.version, servers: state.status().servers };
  }
  state.setPhase('progressing');
  let stopReason: string | undefined;
  try {
    await control.checkpoint();
    const green = await replacement.launch(old.length);
    if (!spec.strategy.autoPromote)
      await control.gate(`approval before switching ${spec.target.name} to ${spec.version}`);
    await control.checkpoint();
    await replacement.switchAll(green, old);
    await control.sleep(spec.strategy.scaleDownDelay);
    await control.checkpoint();
  } catch (error) {
    stopReason = stopReasonOf(error);
  }
  return end(spec, state, replacement, stopReason);
}
