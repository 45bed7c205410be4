// The coordinator's domain: run specs, the configuration table, the durable run state machine and its stage
// executors' interfaces. No gRPC here (src/service.ts and src/clients/ are the wiring).
export * from './auto-resume';
export * from './configurations';
export * from './data';
export * from './engine';
export * from './evaluate';
export * from './executors';
export * from './job-spec';
export * from './label-noise';
export * from './metrics';
export * from './plan';
export * from './prompt-split';
export * from './seeds';
export * from './shards';
export * from './run-errors';
export * from './run-events';
export * from './retention';
export * from './run-spec';
export * from './stage-manifest';
export * from './store';
