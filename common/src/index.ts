export * from './config.js';
export * from './logger.js';
export * from './errors.js';
export * from './metrics.js';
export * from './ops.js';
export * from './shutdown.js';
export * from './grpc-health.js';
export * from './migrations.js';
