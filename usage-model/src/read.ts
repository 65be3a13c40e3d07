import type { CredentialKind, CredentialSource } from '@tollgate/common';
import type pg from 'pg';

/**
 * Usage as the management API and `tollgate usage` show it, read from the hourly roll-ups
 * (one row per key, provider and credential source per hour), so a read costs the same
 * whatever the traffic. `from` is rounded
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
  /** Cost units of every request (ROUTE_COSTS' weights; 1 per request on unweighted routes). */
  cost_units: number;
  /** Cost units of the billable requests: what Stripe is sent. */
  billable_cost_units: number;
}

/**
 * One provider and credential source's share of the totals (issue 21, cost allocation):
 * `credential_source` `operator` is managed usage, served with the operator's provider account.
 * Requests that were for no provider have both null.
 */
export interface UsageBySource {
  provider: string | null;
  credential_source: CredentialSource | null;
  total_requests: number;
  billable_requests: number;
  refused_requests: number;
  cost_units: number;
  billable_cost_units: number;
}

/** Totals with their breakdown by provider and credential source. */
interface WithSources {
  by_source: UsageBySource[];
}

export interface KeyUsageSummary extends UsageTotals {
  key_id: string;
  /** `api_key` or `service_token`. */
  credential: string;
  last_request_at: string | null;
}

export interface UserUsage extends UsageTotals, WithSources {
  user_id: string;
  from: string;
  to: string;
  keys: KeyUsageSummary[];
}

export interface UsageBucket extends UsageTotals {
  start: string;
}

/** One credential's usage over a range, per bucket: what the per-key and per-token reads share. */
export interface UsageSeries extends UsageTotals, WithSources {
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
  coalesce(sum(cost_units), 0)::float8 as cost_units,
  coalesce(sum(billable_cost_units), 0)::float8 as billable_cost_units,
  max(last_request_at) as last_request_at`;

interface TotalsRow {
  total_requests: number;
  billable_requests: number;
  refused_requests: number;
  request_bytes: number;
  response_bytes: number;
  duration_ms_total: number;
  cost_units: number;
  billable_cost_units: number;
  last_request_at: Date | null;
}

/** A roll-up group: provider and credential source are '' for none (usage-model 006). */
interface SourceRow extends TotalsRow {
  provider: string;
  credential_source: string;
}

function totals(row: TotalsRow | undefined): UsageTotals {
  const t = row ?? sumRows([]);
  return {
    total_requests: t.total_requests,
    billable_requests: t.billable_requests,
    refused_requests: t.refused_requests,
    request_bytes: t.request_bytes,
    response_bytes: t.response_bytes,
    avg_duration_ms: t.total_requests > 0 ? Math.round((t.duration_ms_total / t.total_requests) * 100) / 100 : 0,
    cost_units: t.cost_units,
    billable_cost_units: t.billable_cost_units,
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
    cost_units: 0,
    billable_cost_units: 0,
    last_request_at: null,
  };
  for (const row of rows) {
    out.total_requests += row.total_requests;
    out.billable_requests += row.billable_requests;
    out.refused_requests += row.refused_requests;
    out.request_bytes += row.request_bytes;
    out.response_bytes += row.response_bytes;
    out.duration_ms_total += row.duration_ms_total;
    out.cost_units += row.cost_units;
    out.billable_cost_units += row.billable_cost_units;
    if (row.last_request_at && (!out.last_request_at || row.last_request_at > out.last_request_at)) out.last_request_at = row.last_request_at;
  }
  return out;
}

/** Adds up rows into groups by `keyOf`, in the order the groups first appear. */
function groupRows<R extends TotalsRow>(rows: R[], keyOf: (row: R) => string): { first: R; sum: TotalsRow }[] {
  const groups = new Map<string, R[]>();
  for (const row of rows) {
    const k = keyOf(row);
    const g = groups.get(k);
    if (g) g.push(row);
    else groups.set(k, [row]);
  }
  return [...groups.values()].map((g) => ({ first: g[0]!, sum: sumRows(g) }));
}

/** The breakdown by provider and credential source, most cost units first. */
function bySource(rows: SourceRow[]): UsageBySource[] {
  return groupRows(rows, (r) => `${r.provider}\u0000${r.credential_source}`)
    .map(({ first, sum }) => ({
      provider: first.provider || null,
      credential_source: (first.credential_source || null) as CredentialSource | null,
      total_requests: sum.total_requests,
      billable_requests: sum.billable_requests,
      refused_requests: sum.refused_requests,
      cost_units: sum.cost_units,
      billable_cost_units: sum.billable_cost_units,
    }))
    .sort(
      (a, b) =>
        b.cost_units - a.cost_units ||
        (a.provider ?? '').localeCompare(b.provider ?? '') ||
        (a.credential_source ?? '').localeCompare(b.credential_source ?? ''),
    );
}

/** A user's usage over a range, in total and per key (keys without requests in the range are absent). */
export async function readUserUsage(pool: pg.Pool, userId: string, range?: UsageRange): Promise<UserUsage> {
  const { from, to } = resolveUsageRange(range);
  const r = await pool.query<SourceRow & { key_id: string; credential: string }>(
    `select key_id, provider, credential_source, min(credential) as credential, ${TOTALS}
     from usage_hourly where user_id = $1 and bucket >= $2 and bucket < $3
     group by key_id, provider, credential_source order by key_id`,
    [userId, from, to],
  );
  const keys: KeyUsageSummary[] = groupRows(r.rows, (row) => row.key_id).map(({ first, sum }) => ({
    key_id: first.key_id,
    credential: first.credential,
    ...totals(sum),
    last_request_at: sum.last_request_at?.toISOString() ?? null,
  }));
  return { user_id: userId, from: from.toISOString(), to: to.toISOString(), ...totals(sumRows(r.rows)), by_source: bySource(r.rows), keys };
}

interface SeriesRow extends SourceRow {
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
    `select bucket, provider, credential_source, min(user_id) as user_id, min(credential) as credential, min(project) as project,
            min(service) as service, ${TOTALS}
     from ${table} where key_id = $1 and credential = $2 and bucket >= $3 and bucket < $4
     group by bucket, provider, credential_source order by bucket`,
    [keyId, credential, lo, to],
  );
  const all = sumRows(r.rows);
  return {
    from: lo.toISOString(),
    to: to.toISOString(),
    granularity,
    ...totals(all),
    last_request_at: all.last_request_at?.toISOString() ?? null,
    by_source: bySource(r.rows),
    buckets: groupRows(r.rows, (row) => row.bucket.toISOString()).map(({ first, sum }) => ({ start: first.bucket.toISOString(), ...totals(sum) })),
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

/** The latest answer with a status in a set, for one operator credential. */
export interface OperatorCredentialRejection {
  operator_credential_id: string;
  status: number;
  /** When the latest such request started. */
  last_seen_at: Date;
}

/**
 * Operator credentials whose requests the upstream answered with one of `statuses` (401, say),
 * each with its latest such answer: billing-sidecar keeps the statuses as it records the rows
 * (usage-model 006), so this reads a few rows per credential, never usage_records.
 */
export async function readOperatorCredentialRejections(pool: pg.Pool, statuses: readonly number[]): Promise<OperatorCredentialRejection[]> {
  const r = await pool.query<OperatorCredentialRejection>(
    `select distinct on (operator_credential_id) operator_credential_id, status, last_seen_at
     from operator_credential_statuses where status = any($1::int[])
     order by operator_credential_id, last_seen_at desc`,
    [statuses],
  );
  return r.rows;
}
