import type { infrastructureLockWorkflow } from './lock';
import type { InfrastructureLockWorkflow, RolloutWorkflow } from './messages';
import type { rolloutWorkflow } from './rollout';

// The workflow bundle's entry point: every workflow type the worker registers.
export { rolloutWorkflow } from './rollout';
export { infrastructureLockWorkflow } from './lock';

/** Fails to compile when a workflow no longer takes what its clients send (workflows/messages). */
type Keeps<Workflow extends View, View> = Workflow;
export type ClientViews = [
  Keeps<typeof rolloutWorkflow, RolloutWorkflow>,
  Keeps<typeof infrastructureLockWorkflow, InfrastructureLockWorkflow>,
];
