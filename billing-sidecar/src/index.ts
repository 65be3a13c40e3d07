export { startBillingSidecar, type BillingSidecar, type BillingSidecarDeps } from './app.js';
export { loadBillingConfig, type BillingConfig } from './config.js';
export { parseBillableRule, isBillable, DEFAULT_BILLABLE_RULE, type BillableRule } from './domain/billable.js';
export { fromAlsEntry, fromJsonLogLine, stripQuery, type UsageRecord } from './domain/usage-record.js';
export { createStripeMeterClient, classifyStripeError, parseRetryAfter, type MeterClient, type MeterEvent, type MeterOutcome } from './stripe/meter-client.js';
