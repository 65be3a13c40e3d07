import type { CredentialKind } from '@tollgate/common';
import type pg from 'pg';

/**
 * Usage as the management API and `tollgate usage` show it, read from the hourly roll-ups
 * (one row per key per hour), so a read costs the same whatever the traffic. `from` is rounded
 * down and `to` up to whole hours (UTC); the answer says which range it covers.
 */
export interface UsageRange {
  from?: Date | string;
  to?: Date | string;
}

export interface UsageTotals {
  /** Every logged request with this identity, the gateway's own refusals included. */
  total_requests: number;
  /** What billing charges: never a request the gateway refused. */
  billable_requests: number;
  /** Requests authz-service refused (scope, provider credential, rate limit…): never billable. */
  refused_requests: number;
  request_bytes: number;
  response_bytes: number;
  /** Mean request duration over the range, in milliseconds (0 without requests). */
  avg_duration_ms: number;
}

export interface KeyUsageSummary extends UsageTotals {
  key_id: string;
  /** `api_key` or `service_token`. */
  credential: string;
  last_request_at: string | null;
}

export interface UserUsage extends UsageTotals {
  user_id: string;
  from: string;
  to: string;
  keys: KeyUsageSummary[];
}

export interface UsageBucket extends UsageTotals {
  start: string;
}

/** One credential's usage over a range, per bucket: what the per-key and per-token reads share. */
export interface UsageSeries extends UsageTotals {
  from: string;
  to: string;
  granularity: 'hour' | 'day';
  last_request_at: string | null;
  buckets: UsageBucket[];
}

export interface KeyUsage extends UsageSeries {
  key_id: string;
  user_id: string | null;
  credential: string | null;
}

/** A service token's usage; tokens have no user, they belong to a project and a service. */
export interface TokenUsage extends UsageSeries {
  jti: string;
  credential: 'service_token';
  project: string | null;
  service: string | null;
}

export type SeriesRange = UsageRange & { granularity?: 'hour' | 'day' };

/** A bad `from` / `to`; the message is safe to show a client (a 400). */
export class UsageRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageRangeError';
  }
}

const HOUR = 3_600_000;
const DEFAULT_SPAN = 30 * 24 * HOUR;
const MAX_SPAN = 400 * 24 * HOUR;

function toDate(v: Date | string | undefined, name: string): Date | undefined {
  if (v === undefined || v === '') return undefined;
  const d = v instanceof Date ? v : /^\d+$/.test(v) ? new Date(Number(v) * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageRangeError(`${name} must be an ISO 8601 time or Unix seconds`);
  return d;
}

/** Validates and normalises a range: default the last 30 days, whole hours, at most 400 days. */
export function resolveUsageRange(range: UsageRange = {}, now = new Date()): { from: Date; to: Date } {
  const toRaw = toDate(range.to, 'to') ?? now;
  const fromRaw = toDate(range.from, 'from') ?? new Date(toRaw.getTime() - DEFAULT_SPAN);
  if (fromRaw.getTime() >= toRaw.getTime()) throw new UsageRangeError('from must be before to');
  const from = new Date(Math.floor(fromRaw.getTime() / HOUR) * HOUR);
  const to = new Date(Math.ceil(toRaw.getTime() / HOUR) * HOUR);
  if (to.getTime() - from.getTime() > MAX_SPAN) throw new UsageRangeError('the range may span at most 400 days');
  return { from, to };
}

const TOTALS = `
  coalesce(sum(total_requests), 0)::float8 as total_requests,
  coalesce(sum(billable_requests), 0)::float8 as billable_requests,
  coalesce(sum(refused_requests), 0)::float8 as refused_requests,
  coalesce(sum(request_bytes), 0)::float8 as request_bytes,
  coalesce(sum(response_bytes), 0)::float8 as response_bytes,
  coalesce(sum(duration_ms_total), 0)::float8 as duration_ms_total,
  max(last_request_at) as last_request_at`;

interface TotalsRow {
  total_requests: number;
  billable_requests: number;
  refused_requests: number;
  request_bytes: number;
  response_bytes: number;
  duration_ms_total: number;
  last_request_at: Date | null;
}

function totals(row: TotalsRow | undefined): UsageTotals {
  const t = row ?? { total_requests: 0, billable_requests: 0, refused_requests: 0, request_bytes: 0, response_bytes: 0, duration_ms_total: 0 };
  return {
    total_requests: t.total_requests,
    billable_requests: t.billable_requests,
    refused_requests: t.refused_requests,
    request_bytes: t.request_bytes,
    response_bytes: t.response_bytes,
    avg_duration_ms: t.total_requests > 0 ? Math.round((t.duration_ms_total / t.total_requests) * 100) / 100 : 0,
  };
}

/** Adds up per-key or per-bucket rows into one. */
function sumRows(rows: TotalsRow[]): TotalsRow {
  const out: TotalsRow = {
    total_requests: 0,
    billable_requests: 0,
    refused_requests: 0,
    request_bytes: 0,
    response_bytes: 0,
    duration_ms_total: 0,
    last_request_at: null,
  };
  for (const row of rows) {
    out.total_requests += row.total_requests;
    out.billable_requests += row.billable_requests;
    out.refused_requests += row.refused_requests;
    out.request_bytes += row.request_bytes;
    out.response_bytes += row.response_bytes;
    out.duration_ms_total += row.duration_ms_total;
    if (row.last_request_at && (!out.last_request_at || row.last_request_at > out.last_request_at)) out.last_request_at = row.last_request_at;
  }
  return out;
}

/** A user's usage over a range, in total and per key (keys without requests in the range are absent). */
export async function readUserUsage(pool: pg.Pool, userId: string, range?: UsageRange): Promise<UserUsage> {
  const { from, to } = resolveUsageRange(range);
  const r = await pool.query<TotalsRow & { key_id: string; credential: string }>(
    `select key_id, min(credential) as credential, ${TOTALS}
     from usage_hourly where user_id = $1 and bucket >= $2 and bucket < $3
     group by key_id order by key_id`,
    [userId, from, to],
  );
  const keys: KeyUsageSummary[] = r.rows.map((row) => ({
    key_id: row.key_id,
    credential: row.credential,
    ...totals(row),
    last_request_at: row.last_request_at?.toISOString() ?? null,
  }));
  return { user_id: userId, from: from.toISOString(), to: to.toISOString(), ...totals(sumRows(r.rows)), keys };
}

interface SeriesRow extends TotalsRow {
  bucket: Date;
  user_id: string | null;
  credential: string;
  project: string | null;
  service: string | null;
}

/**
 * One credential's roll-ups over a range, in total and per hour or per day (UTC buckets with
 * requests), with the first bucket's attribution for the caller to name the credential by.
 */
async function readSeries(
  pool: pg.Pool,
  keyId: string,
  credential: CredentialKind,
  range?: SeriesRange,
): Promise<UsageSeries & { first: SeriesRow | undefined }> {
  const { from, to } = resolveUsageRange(range);
  const granularity = range?.granularity ?? 'day';
  const table = granularity === 'hour' ? 'usage_hourly' : 'usage_daily';
  // Daily buckets are whole UTC days: widen the range to them so a bucket is never partial.
  const lo = granularity === 'day' ? new Date(Math.floor(from.getTime() / (24 * HOUR)) * 24 * HOUR) : from;
  const r = await pool.query<SeriesRow>(
    `select bucket, min(user_id) as user_id, min(credential) as credential, min(project) as project, min(service) as service, ${TOTALS}
     from ${table} where key_id = $1 and credential = $2 and bucket >= $3 and bucket < $4
     group by bucket order by bucket`,
    [keyId, credential, lo, to],
  );
  const all = sumRows(r.rows);
  return {
    from: lo.toISOString(),
    to: to.toISOString(),
    granularity,
    ...totals(all),
    last_request_at: all.last_request_at?.toISOString() ?? null,
    buckets: r.rows.map((row) => ({ start: row.bucket.toISOString(), ...totals(row) })),
    first: r.rows[0],
  };
}

/** One API key's usage over a range, in total and per hour or per day (UTC buckets with requests). */
export async function readKeyUsage(pool: pg.Pool, keyId: string, range?: SeriesRange): Promise<KeyUsage> {
  const { first, ...series } = await readSeries(pool, keyId, 'api_key', range);
  return { key_id: keyId, user_id: first?.user_id ?? null, credential: first?.credential ?? null, ...series };
}

/** One service token's usage (by `jti`), the same way. */
export async function readTokenUsage(pool: pg.Pool, jti: string, range?: SeriesRange): Promise<TokenUsage> {
  const { first, ...series } = await readSeries(pool, jti, 'service_token', range);
  return { jti, credential: 'service_token', project: first?.project ?? null, service: first?.service ?? null, ...series };
}

export interface ParkedMeterEvent {
  identifier: string;
  stripe_customer_id: string;
  value: number;
  window_start: string;
  status: number | null;
  error: string | null;
}

export interface BillingStatus {
  /** Meter events Stripe has not accepted yet (retrying). */
  pending_events: number;
  oldest_pending_at: string | null;
  /** Meter events Stripe refused (a 4xx other than 429): they need an operator. */
  parked_events: ParkedMeterEvent[];
}

/** The Stripe side of billing: what is waiting and what Stripe refused (optionally for one customer). */
export async function readBillingStatus(pool: pg.Pool, opts: { stripeCustomerId?: string; limit?: number } = {}): Promise<BillingStatus> {
  const customer = opts.stripeCustomerId ?? null;
  const pending = await pool.query<{ n: number; oldest: Date | null }>(
    `select count(*)::int as n, min(created_at) as oldest from stripe_outbox
     where status = 'pending' and ($1::text is null or stripe_customer_id = $1)`,
    [customer],
  );
  const parked = await pool.query<{
    identifier: string;
    stripe_customer_id: string;
    value: string;
    window_start: Date;
    last_status: number | null;
    last_error: string | null;
  }>(
    `select identifier, stripe_customer_id, value, window_start, last_status, last_error from stripe_outbox
     where status = 'parked' and ($1::text is null or stripe_customer_id = $1) order by id limit $2`,
    [customer, opts.limit ?? 100],
  );
  return {
    pending_events: pending.rows[0]?.n ?? 0,
    oldest_pending_at: pending.rows[0]?.oldest?.toISOString() ?? null,
    parked_events: parked.rows.map((p) => ({
      identifier: p.identifier,
      stripe_customer_id: p.stripe_customer_id,
      value: Number(p.value),
      window_start: p.window_start.toISOString(),
      status: p.last_status,
      error: p.last_error,
    })),
  };
}
