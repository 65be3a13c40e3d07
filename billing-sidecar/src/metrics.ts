import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Every metric the sidecar exports, registered on the service's own registry. */
export function createBillingMetrics(registry: Registry) {
  const registers = [registry];
  return {
    entriesReceived: new Counter({
      name: 'tollgate_billing_entries_received_total',
      help: 'Access-log entries received, by source (als: gRPC stream, file: JSON access log).',
      labelNames: ['source'] as const,
      registers,
    }),
    entriesSkipped: new Counter({
      name: 'tollgate_billing_entries_skipped_total',
      help: 'Entries that did not become usage records, by reason (no_identity, no_request_id, malformed, past_retention).',
      labelNames: ['source', 'reason'] as const,
      registers,
    }),
    recordsWritten: new Counter({
      name: 'tollgate_billing_records_written_total',
      help: 'Usage records inserted into Postgres.',
      registers,
    }),
    duplicatesSkipped: new Counter({
      name: 'tollgate_billing_duplicates_skipped_total',
      help: 'Entries whose request id was already recorded (re-sent, replayed, or seen on both sources).',
      registers,
    }),
    writeErrors: new Counter({
      name: 'tollgate_billing_write_errors_total',
      help: 'Failed usage batch writes (retried; entries stay buffered).',
      registers,
    }),
    writeSeconds: new Histogram({
      name: 'tollgate_billing_write_batch_seconds',
      help: 'Time to write one usage batch.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    buffered: new Gauge({
      name: 'tollgate_billing_buffered_entries',
      help: 'Entries received but not yet written.',
      registers,
    }),
    ingestLag: new Gauge({
      name: 'tollgate_billing_ingest_lag_seconds',
      help: 'In the last written batch, the longest time from a request ending to its usage row being written.',
      registers,
    }),
    accessLogBytesBehind: new Gauge({
      name: 'tollgate_billing_access_log_bytes_behind',
      help: 'Bytes of the JSON access log not yet read.',
      registers,
    }),
    accessLogRotations: new Counter({
      name: 'tollgate_billing_access_log_rotations_total',
      help: 'JSON access log files renamed by the sidecar, read to their end and deleted.',
      registers,
    }),
    accessLogReopenFailures: new Counter({
      name: 'tollgate_billing_access_log_reopen_failures_total',
      help: 'POST /reopen_logs calls to Envoy that failed (the renamed file is kept until one succeeds).',
      registers,
    }),
    usagePartitions: new Gauge({
      name: 'tollgate_billing_usage_partitions',
      help: 'Day partitions of usage_records that exist (retention window plus the days created ahead).',
      registers,
    }),
    usagePartitionsDropped: new Counter({
      name: 'tollgate_billing_usage_partitions_dropped_total',
      help: 'Day partitions of usage_records dropped by retention (USAGE_RETENTION_DAYS).',
      registers,
    }),
    usagePartitionFailures: new Counter({
      name: 'tollgate_billing_usage_partition_failures_total',
      help: 'Failed partition maintenance runs (creating ahead or dropping expired days); retried at the next interval.',
      registers,
    }),
    stripeCalls: new Counter({
      name: 'tollgate_billing_stripe_calls_total',
      help: 'Meter event calls to Stripe by outcome (accepted, duplicate, rate_limited, server_error, network_error, parked).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    outboxDepth: new Gauge({
      name: 'tollgate_billing_outbox_depth',
      help: 'Meter events in the outbox by status (pending: not yet accepted by Stripe; parked: refused, needs an operator).',
      labelNames: ['status'] as const,
      registers,
    }),
    outboxOldestAge: new Gauge({
      name: 'tollgate_billing_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest meter event Stripe has not yet accepted (0 when none).',
      registers,
    }),
  };
}

export type BillingMetrics = ReturnType<typeof createBillingMetrics>;
