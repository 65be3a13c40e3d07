export { migrateBilling } from './schema.js';
export * from './read.js';
export { dropExpiredUsagePartitions, ensureUsagePartitions, listUsagePartitions, retentionHorizon } from './partitions.js';
export * from './outcome-series.js';
