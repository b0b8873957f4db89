// The workflow bundle's entry point: every workflow type the worker registers.
export { rolloutWorkflow } from './rollout';
export { infrastructureLockWorkflow } from './lock';
