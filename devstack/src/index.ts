export * from './proc.js';
export * from './postgres.js';
export * from './redis.js';
export * from './envoy-config.js';
export * from './envoy.js';
export * from './stripe-mock.js';
export * from './test-infra.js';
export * from './bench-infra.js';
