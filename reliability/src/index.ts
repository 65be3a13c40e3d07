export * from './gateway.js';
export * from './keys.js';
export * from './load.js';
export * from './usage.js';
