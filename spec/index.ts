export * from './duration';
export * from './errors';
export * from './load';
export * from './rollout';
export { rolloutJsonSchema } from './json-schema';
