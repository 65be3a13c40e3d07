export { migrateBilling } from './schema.js';
export * from './read.js';
export * from './outcome-series.js';
