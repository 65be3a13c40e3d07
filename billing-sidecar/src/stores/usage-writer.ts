import type pg from 'pg';
import type { Logger } from '@tollgate/common';
import { retentionHorizon } from '@tollgate/usage-model';
import { meterEventFor, type MeterRouting } from '../domain/meter-routing.js';
import type { UsageRecord } from '../domain/usage-record.js';
import type { BillingMetrics } from '../metrics.js';

// Roll-up upsert for one granularity: adds the batch's newly inserted rows to the bucket totals,
// one row per key, bucket, provider and credential source ('' for none: usage-model 006).
const rollup = (table: string, unit: 'hour' | 'day') => `
  ${table} as (
    insert into ${table} as r (bucket, key_id, provider, credential_source, user_id, credential, project, service, total_requests,
                               billable_requests, refused_requests, request_bytes, response_bytes, duration_ms_total, last_request_at,
                               allowed_requests, unauthenticated_requests, forbidden_requests, rate_limited_requests, server_error_requests,
                               cost_units, billable_cost_units)
    select date_trunc('${unit}', started_at at time zone 'UTC') at time zone 'UTC', key_id, coalesce(provider, ''), coalesce(credential_source, ''),
           min(user_id), min(credential), min(project), min(service), count(*), count(*) filter (where billable),
           count(*) filter (where decision = 'deny'), sum(request_bytes), sum(response_bytes), sum(duration_ms), max(started_at),
           -- Outcome classes (usage-model 004); 'other' is the rest of count(*).
           count(*) filter (where status between 200 and 399), count(*) filter (where status = 401), count(*) filter (where status = 403),
           count(*) filter (where status = 429), count(*) filter (where status between 500 and 599),
           -- Cost units (usage-model 005).
           sum(cost), coalesce(sum(cost) filter (where billable), 0)
    from ins group by 1, 2, 3, 4
    -- A stable order keeps concurrent writers (other replicas) from deadlocking on bucket rows.
    order by 2, 1, 3, 4
    on conflict (key_id, bucket, provider, credential_source) do update set
      total_requests = r.total_requests + excluded.total_requests,
      billable_requests = r.billable_requests + excluded.billable_requests,
      refused_requests = r.refused_requests + excluded.refused_requests,
      request_bytes = r.request_bytes + excluded.request_bytes,
      response_bytes = r.response_bytes + excluded.response_bytes,
      duration_ms_total = r.duration_ms_total + excluded.duration_ms_total,
      last_request_at = greatest(r.last_request_at, excluded.last_request_at),
      allowed_requests = r.allowed_requests + excluded.allowed_requests,
      unauthenticated_requests = r.unauthenticated_requests + excluded.unauthenticated_requests,
      forbidden_requests = r.forbidden_requests + excluded.forbidden_requests,
      rate_limited_requests = r.rate_limited_requests + excluded.rate_limited_requests,
      server_error_requests = r.server_error_requests + excluded.server_error_requests,
      cost_units = r.cost_units + excluded.cost_units,
      billable_cost_units = r.billable_cost_units + excluded.billable_cost_units
  )`;

/**
 * One statement per batch: the rows, their roll-ups and the Stripe pending totals change
 * together, and only for rows that were not already there, so a replayed entry adds nothing
 * anywhere. Pending totals are cost units per customer and meter event (meter-routing.ts
 * chose the event; null: not sent to Stripe).
 */
const INSERT_BATCH = `
  with input as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::int4[], $9::int8[], $10::int8[], $11::int4[], $12::timestamptz[], $13::bool[], $14::text[],
                         $15::text[], $16::text[], $17::text[], $18::text[], $19::int4[], $20::text[], $21::text[], $22::text[],
                         $23::text[])
      as t(request_id, key_id, user_id, credential, stripe_customer_id, method, path,
           status, request_bytes, response_bytes, duration_ms, started_at, billable, source,
           decision, error_code, project, service, cost, provider, credential_source, operator_credential_id,
           meter_event)
  ),
  ins as (
    insert into usage_records (request_id, key_id, user_id, credential, stripe_customer_id, method, path,
                               status, request_bytes, response_bytes, duration_ms, started_at, billable, source,
                               decision, error_code, project, service, cost, provider, credential_source, operator_credential_id,
                               usage_day)
    select request_id, key_id, user_id, credential, stripe_customer_id, method, path,
           status, request_bytes, response_bytes, duration_ms, started_at, billable, source,
           decision, error_code, project, service, cost, provider, credential_source, operator_credential_id,
           (started_at at time zone 'UTC')::date
    from input
    on conflict (request_id, usage_day) do nothing
    returning request_id, key_id, user_id, credential, stripe_customer_id, request_bytes, response_bytes, duration_ms, started_at, billable,
              decision, project, service, status, cost, provider, credential_source, operator_credential_id
  ),
  ${rollup('usage_hourly', 'hour')},
  ${rollup('usage_daily', 'day')},
  pending as (
    insert into stripe_pending as p (stripe_customer_id, event_name, quantity)
    select ins.stripe_customer_id, input.meter_event, sum(ins.cost) from ins join input using (request_id)
    where ins.billable and ins.stripe_customer_id is not null and input.meter_event is not null
    group by 1, 2 order by 1, 2
    on conflict (stripe_customer_id, event_name) do update set quantity = p.quantity + excluded.quantity
  ),
  -- The upstream's error answers per operator credential (docs/vault.md, "Rejected operator credentials").
  credential_statuses as (
    insert into operator_credential_statuses as c (operator_credential_id, status, requests, last_seen_at)
    select operator_credential_id, status, count(*), max(started_at) from ins
    where credential_source = 'operator' and operator_credential_id is not null and decision = 'allow' and status >= 400
    group by 1, 2 order by 1, 2
    on conflict (operator_credential_id, status) do update set
      requests = c.requests + excluded.requests,
      last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at)
  )
  select count(*)::int as inserted from ins`;

export interface UsageWriterOptions {
  batchSize: number;
  flushIntervalMs: number;
  /** Above this many buffered entries `hasRoom()` is false and the gRPC streams pause. */
  maxBuffered: number;
  /** Where billable usage of Stripe customers accrues for meter events; unset: Stripe is off. */
  meterRouting?: MeterRouting;
  /** USAGE_RETENTION_DAYS (0: forever). Rows older than that are not written (see writeBatch). */
  retentionDays: number;
}

interface Waiter {
  seq: number;
  resolve: () => void;
}

/**
 * Buffers usage records from every source and writes them in batches, one batch at a time
 * (one writer per process keeps roll-up upserts from contending with each other). A failed
 * write is retried with backoff; records stay in memory until written.
 */
export class UsageWriter {
  private buffer: UsageRecord[] = [];
  private enqueuedSeq = 0;
  private writtenSeq = 0;
  private waiters: Waiter[] = [];
  private roomWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: UsageWriterOptions,
    private readonly metrics: BillingMetrics,
    private readonly logger: Logger,
  ) {}

  get buffered(): number {
    return this.buffer.length;
  }

  hasRoom(): boolean {
    return this.buffer.length < this.opts.maxBuffered;
  }

  /** Resolves once the buffer is below its limit again. */
  waitForRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((r) => this.roomWaiters.push(r));
  }

  /** Adds records; the promise resolves when all of them are durably in Postgres. */
  add(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    for (const r of records) this.buffer.push(r);
    this.enqueuedSeq += records.length;
    this.metrics.buffered.set(this.buffer.length);
    const seq = this.enqueuedSeq;
    const done = new Promise<void>((resolve) => this.waiters.push({ seq, resolve }));
    if (this.buffer.length >= this.opts.batchSize) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.flushIntervalMs);
    return done;
  }

  /** Writes everything buffered so far. */
  async flush(): Promise<void> {
    while (this.buffer.length > 0 || this.flushing) {
      this.kick();
      await this.flushing;
    }
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.flushing || this.buffer.length === 0) return;
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
      if (this.buffer.length > 0 && !this.closed) {
        if (this.buffer.length >= this.opts.batchSize) this.kick();
        else this.timer ??= setTimeout(() => this.kick(), this.opts.flushIntervalMs);
      }
    });
  }

  private async drain(): Promise<void> {
    // Full batches go back to back; a partial one is written once and the rest waits for the timer.
    do {
      const batch = this.buffer.slice(0, this.opts.batchSize);
      await this.writeWithRetry(batch);
      this.buffer.splice(0, batch.length);
      this.writtenSeq += batch.length;
      this.metrics.buffered.set(this.buffer.length);
      this.release();
    } while (this.buffer.length >= this.opts.batchSize);
  }

  private release(): void {
    while (this.waiters.length > 0 && this.waiters[0]!.seq <= this.writtenSeq) this.waiters.shift()!.resolve();
    if (this.hasRoom()) for (const r of this.roomWaiters.splice(0)) r();
  }

  private async writeWithRetry(batch: UsageRecord[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.writeBatch(batch);
        return;
      } catch (err) {
        this.metrics.writeErrors.inc();
        const delay = Math.min(5_000, 100 * 2 ** attempt);
        this.logger.error({ err, batch: batch.length, retryInMs: delay }, 'usage batch write failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async writeBatch(batch: UsageRecord[]): Promise<void> {
    // The same request can arrive twice in one batch (stream and file): keep the first.
    const unique = new Map<string, UsageRecord>();
    // A request older than the retention horizon may have had its row, and its day partition,
    // dropped already: writing it again would count and bill it twice. Such entries come
    // only from replaying an old access log; they are skipped and counted.
    const horizon = this.opts.retentionDays > 0 ? retentionHorizon(new Date(), this.opts.retentionDays).getTime() : -Infinity;
    let expired = 0;
    for (const r of batch) {
      if (r.startedAt.getTime() < horizon) {
        expired++;
        this.metrics.entriesSkipped.inc({ source: r.source, reason: 'past_retention' });
      } else if (!unique.has(r.requestId)) unique.set(r.requestId, r);
    }
    const rows = [...unique.values()];
    const cols: unknown[][] = Array.from({ length: 23 }, () => new Array(rows.length));
    const routing = this.opts.meterRouting;
    rows.forEach((r, i) => {
      cols[0]![i] = r.requestId;
      cols[1]![i] = r.keyId;
      cols[2]![i] = r.userId;
      cols[3]![i] = r.credential;
      cols[4]![i] = r.stripeCustomerId;
      cols[5]![i] = r.method;
      cols[6]![i] = r.path;
      cols[7]![i] = r.status;
      cols[8]![i] = r.requestBytes;
      cols[9]![i] = r.responseBytes;
      cols[10]![i] = r.durationMs;
      cols[11]![i] = r.startedAt.toISOString();
      cols[12]![i] = r.billable;
      cols[13]![i] = r.source;
      cols[14]![i] = r.decision;
      cols[15]![i] = r.errorCode;
      cols[16]![i] = r.project;
      cols[17]![i] = r.service;
      cols[18]![i] = r.cost;
      cols[19]![i] = r.provider;
      cols[20]![i] = r.credentialSource;
      cols[21]![i] = r.operatorCredentialId;
      cols[22]![i] = routing ? meterEventFor(routing, r) : null;
    });
    const stop = this.metrics.writeSeconds.startTimer();
    const res = await this.pool.query<{ inserted: number }>(INSERT_BATCH, cols);
    stop();
    const inserted = res.rows[0]?.inserted ?? 0;
    this.metrics.recordsWritten.inc(inserted);
    this.metrics.duplicatesSkipped.inc(batch.length - expired - inserted);
    // Ingest lag: from the earliest request end in the batch to now (large while backfilling).
    let oldestEnd = Infinity;
    for (const r of rows) oldestEnd = Math.min(oldestEnd, r.startedAt.getTime() + r.durationMs);
    if (Number.isFinite(oldestEnd)) this.metrics.ingestLag.set(Math.max(0, (Date.now() - oldestEnd) / 1000));
  }
}
