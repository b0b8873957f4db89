import { condition, defineSignal, setHandler } from '@temporalio/workflow';

/** Sent by the rollout holding a lock when it ends; carries its workflow id. */
export const releaseLockSignal = defineSignal<[string]>('release');

/**
 * One live rollout per piece of infrastructure, whatever the specs call it: the client starts this workflow,
 * whose id names the infrastructure, before the rollout, and Temporal refuses a second one with that id while it
 * runs. It ends when its holder says so at the rollout's end; a client that finds it held by a rollout that is
 * no longer running (terminated by hand) ends it before taking it.
 */
export async function infrastructureLockWorkflow(holder: string): Promise<void> {
  let released = false;
  setHandler(releaseLockSignal, (by) => {
    if (by === holder) released = true;
  });
  await condition(() => released);
}
