export * from './error-status';
export * from './validation';
export * from './logger';
export * from './tracing';
export * from './limits';
export * from './server';
export * from './client';
export * from './config';
