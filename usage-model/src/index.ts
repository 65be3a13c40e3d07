export { migrateBilling } from './schema.js';
export * from './read.js';
