export * from './duration';
export * from './errors';
export * from './load';
export * from './rollout';
export { rolloutJsonSchema } from './json-schema';
export * from './failure-types';
// What activities measure and workflows judge: defined with the judgement, which imports nothing.
export type { ServerCounters } from '../workflows/plan/canary';
