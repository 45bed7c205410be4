export * from './errors';
export * from './uri';
export * from './hash';
export * from './atomic';
export * from './jsonl';
export * from './manifest';
export * from './store';
export * from './confine';
