export * from './quantity';
export * from './batches';
export * from './surge';
export * from './failure-budget';
export * from './replicas';
export * from './canary';
export * from './naming';
export * from './run-limits';
