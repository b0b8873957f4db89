import type { FleetServer, RecreateStrategy } from '../../spec/rollout';
import type { RolloutControl } from '../control';
import { RolloutAborted } from '../control';
import type { FleetRolloutSpec, FleetSteps, ForwardStep } from '../fleet-steps';
import { failureMessage } from '../fleet-steps';
import { forEachLimited } from '../limit';
import type { RolloutResult } from '../messages';
import type { RolloutState } from '../state';
import { preflightOrReject, rollBack } from './outcome';

/** How many servers one step of a recreate touches at once. */
const parallel = 50;

/**
 * Recreate on a fleet: every server is taken out of rotation and drained, then (after the optional pre-step,
 * e.g. a migration) all are upgraded, verified and put back. Requests arriving while no server is in rotation
 * fail: that is the point of recreate, for versions that can't run side by side. Any failure, or an abort,
 * puts every server back on its old version.
 */
export async function recreateFleetStrategy(
  spec: FleetRolloutSpec & { strategy: RecreateStrategy },
  state: RolloutState,
  steps: FleetSteps,
  control: RolloutControl,
): Promise<RolloutResult> {
  const { servers } = spec.target;
  const versions = await preflightOrReject(state, () => steps.preflight());
  for (const server of servers)
    state.update(server.name, { fromVersion: versions[server.name], version: versions[server.name] });
  const first = servers[0];
  if (first && versions[first.name] !== undefined) state.setFromVersion(versions[first.name] ?? '');
  state.batches = 1;
  state.batch = 1;
  state.setPhase('progressing');

  const reached = new Map<string, ForwardStep>();
  /** Runs one step on every server; the first failure stops the rollout. */
  const everyServer = async (step: ForwardStep, run: (server: FleetServer) => Promise<void>) => {
    await control.checkpoint();
    const failures: string[] = [];
    await forEachLimited(servers, parallel, async (server) => {
      reached.set(server.name, step);
      state.setStep(server.name, step);
      try {
        await run(server);
      } catch (error) {
        state.update(server.name, { step: 'failed', error: failureMessage(error) });
        failures.push(`${server.name}: ${failureMessage(error)}`);
      }
    });
    if (failures.length > 0) throw new Error(`${step} failed on ${failures.join('; ')}`);
  };

  let stopReason: string | undefined;
  try {
    await everyServer('detach', (server) => steps.detach(server));
    await everyServer('drain', (server) => steps.drain(server));
    if (spec.strategy.preStep) {
      await control.checkpoint();
      await steps.hook(spec.strategy.preStep);
    }
    await everyServer('upgrade', (server) => steps.upgrade(server, spec.version));
    await everyServer('verify', (server) => steps.verify(server, spec.version));
    await everyServer('attach', (server) => steps.attach(server));
    for (const server of servers) state.update(server.name, { step: 'done' });
  } catch (error) {
    stopReason = error instanceof RolloutAborted ? error.message : failureMessage(error);
  }

  if (stopReason === undefined) {
    state.setPhase('succeeded');
    return { phase: 'succeeded', toVersion: spec.version, servers: state.status().servers };
  }
  await rollBack(state, stopReason, async () => {
    const problems: string[] = [];
    await forEachLimited(servers, parallel, async (server) => {
      const restored = await steps.restoreServer(server, reached.get(server.name) ?? 'detach');
      if (!restored.ok) problems.push(`${server.name}: ${restored.error}`);
    });
    if (problems.length > 0) throw new Error(problems.join('; '));
  });
  return {
    phase: 'rolled-back',
    reason: stopReason,
    toVersion: spec.version,
    servers: state.status().servers,
  };
}
