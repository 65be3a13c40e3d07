import type pg from 'pg';
import { UNATTRIBUTED } from '@tollgate/common';
import { resolveUsageRange, type UsageRange } from './read.js';

/**
 * Requests by outcome class, as the console charts them (usage-model migration 004): read from
 * the hourly and daily roll-ups, which billing-sidecar keeps per status class as it writes the
 * usage rows, so a chart costs the same whatever the traffic.
 */
export const OUTCOME_CLASSES = ['allowed', 'unauthenticated', 'forbidden', 'rate_limited', 'server_error', 'other'] as const;
export type OutcomeClass = (typeof OUTCOME_CLASSES)[number];
export type OutcomeCounts = Record<OutcomeClass, number>;

export interface OutcomePoint extends OutcomeCounts {
  /** The bucket's start (UTC). */
  t: string;
}

export interface OutcomeSeries {
  bucket: 'hour' | 'day';
  from: string;
  to: string;
  /** Every bucket of the range, oldest first; buckets without requests are zeros. */
  points: OutcomePoint[];
}

/** Whose buckets: one user's keys, one API key, or all traffic (service tokens and unattributed refusals included). */
export type OutcomeScope = { userId: string } | { keyId: string } | { all: true };

const DAY = 86_400_000;

const CLASS_SUMS = `
  coalesce(sum(u.total_requests), 0)::float8 as total,
  coalesce(sum(u.allowed_requests), 0)::float8 as allowed,
  coalesce(sum(u.unauthenticated_requests), 0)::float8 as unauthenticated,
  coalesce(sum(u.forbidden_requests), 0)::float8 as forbidden,
  coalesce(sum(u.rate_limited_requests), 0)::float8 as rate_limited,
  coalesce(sum(u.server_error_requests), 0)::float8 as server_error`;

interface ClassRow {
  total: number;
  allowed: number;
  unauthenticated: number;
  forbidden: number;
  rate_limited: number;
  server_error: number;
}

function counts(r: ClassRow): OutcomeCounts {
  const known = r.allowed + r.unauthenticated + r.forbidden + r.rate_limited + r.server_error;
  return {
    allowed: r.allowed,
    unauthenticated: r.unauthenticated,
    forbidden: r.forbidden,
    rate_limited: r.rate_limited,
    server_error: r.server_error,
    other: Math.max(0, r.total - known),
  };
}

/** The range in whole buckets: hours as resolveUsageRange gives them, days widened to whole UTC days. */
function bucketRange(range: UsageRange, bucket: 'hour' | 'day'): { from: Date; to: Date } {
  const { from, to } = resolveUsageRange(range);
  if (bucket === 'hour') return { from, to };
  return { from: new Date(Math.floor(from.getTime() / DAY) * DAY), to: new Date(Math.ceil(to.getTime() / DAY) * DAY) };
}

function scopeCondition(scope: OutcomeScope, param: number): { sql: string; values: unknown[] } {
  if ('userId' in scope) return { sql: `u.user_id = $${param}`, values: [scope.userId] };
  if ('keyId' in scope) return { sql: `u.key_id = $${param} and u.credential = 'api_key'`, values: [scope.keyId] };
  return { sql: 'true', values: [] };
}

/** Requests by outcome class per hour or per day over a range (default the last 30 days). */
export async function readOutcomeSeries(pool: pg.Pool, scope: OutcomeScope, range: UsageRange & { bucket?: 'hour' | 'day' } = {}): Promise<OutcomeSeries> {
  const bucket = range.bucket ?? 'day';
  const { from, to } = bucketRange(range, bucket);
  const table = bucket === 'hour' ? 'usage_hourly' : 'usage_daily';
  const cond = scopeCondition(scope, 3);
  const r = await pool.query<ClassRow & { t: Date }>(
    `with b as (select generate_series($1::timestamptz, $2::timestamptz - interval '1 ${bucket}', interval '1 ${bucket}') as t)
     select b.t, ${CLASS_SUMS}
     from b left join ${table} u on u.bucket = b.t and ${cond.sql}
     group by b.t order by b.t`,
    [from, to, ...cond.values],
  );
  return { bucket, from: from.toISOString(), to: to.toISOString(), points: r.rows.map((row) => ({ t: row.t.toISOString(), ...counts(row) })) };
}

export interface KeyPageUsage {
  requests: number;
  by_outcome: OutcomeCounts;
  last_used_at: string | null;
  /** Requests per UTC day of the range, oldest first (for a sparkline). */
  daily: number[];
}

/**
 * Totals for a page of API keys in one query (the console's key list): requests, by outcome,
 * the last request and per-day counts, from the daily roll-ups (the range widened to whole UTC
 * days). Every id asked for is in the answer, zeros when it had no requests.
 */
export async function readKeysUsage(
  pool: pg.Pool,
  keyIds: readonly string[],
  range: UsageRange = {},
): Promise<{ from: string; to: string; data: Record<string, KeyPageUsage> }> {
  const { from, to } = bucketRange(range, 'day');
  const days = Math.round((to.getTime() - from.getTime()) / DAY);
  const r = await pool.query<ClassRow & { key_id: string; bucket: Date; last: Date | null }>(
    `select u.key_id, u.bucket, max(u.last_request_at) as last, ${CLASS_SUMS}
     from usage_daily u where u.key_id = any($1::text[]) and u.credential = 'api_key' and u.bucket >= $2 and u.bucket < $3
     group by u.key_id, u.bucket`,
    [keyIds, from, to],
  );
  const data: Record<string, KeyPageUsage> = {};
  for (const id of keyIds) {
    data[id] = {
      requests: 0,
      by_outcome: { allowed: 0, unauthenticated: 0, forbidden: 0, rate_limited: 0, server_error: 0, other: 0 },
      last_used_at: null,
      daily: new Array<number>(days).fill(0),
    };
  }
  for (const row of r.rows) {
    const k = data[row.key_id]!;
    const c = counts(row);
    k.requests += row.total;
    for (const cls of OUTCOME_CLASSES) k.by_outcome[cls] += c[cls];
    const i = Math.round((row.bucket.getTime() - from.getTime()) / DAY);
    if (i >= 0 && i < days) k.daily[i]! += row.total;
    const last = row.last?.toISOString() ?? null;
    if (last && (!k.last_used_at || last > k.last_used_at)) k.last_used_at = last;
  }
  return { from: from.toISOString(), to: to.toISOString(), data };
}

export interface TopEntry {
  id: string;
  requests: number;
}

export interface TrafficOverview {
  top_keys: (TopEntry & { user_id: string | null; credential: string })[];
  top_users: TopEntry[];
  /** The gateway's refusals by error code (usage rows the Check denied), most first. */
  denials: { error_code: string; requests: number }[];
}

/**
 * The heaviest keys and users from the hourly roll-ups, and the gateway's denials by error code
 * (unattributed refusals, such as unknown keys, count in the denials and in no key's figures).
 * Error codes are not rolled up, so denials read usage_records over the range (denied rows only,
 * by the BRIN index on started_at): an operator's read, never on the ingest path.
 */
export async function readTrafficOverview(pool: pg.Pool, range: UsageRange = {}, limit = 10): Promise<TrafficOverview> {
  const { from, to } = resolveUsageRange(range);
  const keys = await pool.query<{ key_id: string; user_id: string | null; credential: string; requests: number }>(
    `select key_id, min(user_id) as user_id, min(credential) as credential, sum(total_requests)::float8 as requests
     from usage_hourly where bucket >= $1 and bucket < $2 and credential <> $4 group by key_id order by requests desc, key_id limit $3`,
    [from, to, limit, UNATTRIBUTED.credential],
  );
  const users = await pool.query<{ user_id: string; requests: number }>(
    `select user_id, sum(total_requests)::float8 as requests
     from usage_hourly where bucket >= $1 and bucket < $2 and user_id is not null group by user_id order by requests desc, user_id limit $3`,
    [from, to, limit],
  );
  const denials = await pool.query<{ error_code: string; requests: number }>(
    `select coalesce(error_code, 'unknown') as error_code, count(*)::float8 as requests
     from usage_records where started_at >= $1 and started_at < $2 and decision = 'deny' group by 1 order by requests desc, 1`,
    [from, to],
  );
  return {
    top_keys: keys.rows.map((k) => ({ id: k.key_id, user_id: k.user_id, credential: k.credential, requests: k.requests })),
    top_users: users.rows.map((u) => ({ id: u.user_id, requests: u.requests })),
    denials: denials.rows,
  };
}
