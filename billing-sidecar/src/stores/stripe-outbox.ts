import type pg from 'pg';
import type { MeterEvent } from '../stripe/meter-client.js';

/**
 * The identifier of the meter event for (event name, customer, window): a hash, so it is the
 * same on every replica and after any restart, and Stripe's identifier de-duplication turns a
 * re-sent event into a no-op. Computed in SQL when sealing; this is the same function for docs
 * and tests.
 */
const IDENTIFIER_SQL = (eventName: string, customer: string, windowEpoch: string) =>
  `'tg_' || left(encode(sha256(convert_to(${eventName} || '|' || ${customer} || '|' || ${windowEpoch}, 'UTF8')), 'hex'), 40)`;

/**
 * Moves everything pending into one meter event per customer and meter event name for the
 * window starting at `windowStart`, once: the `stripe_windows` row makes a second seal of the
 * same window (another replica, a restart) a no-op, and taking pending rows with DELETE …
 * RETURNING in the same transaction means a unit of usage lands in exactly one event. Pending
 * rows without an event name (accrued before usage-model 006) are for `defaultEventName`; rows
 * that name the same event are summed, so (event, customer, window) stays one identifier.
 */
export async function sealWindow(pool: pg.Pool, defaultEventName: string, windowStart: Date): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const claimed = await client.query('insert into stripe_windows (window_start) values ($1) on conflict do nothing returning window_start', [windowStart]);
    if (claimed.rowCount === 0) {
      await client.query('rollback');
      return 0;
    }
    const r = await client.query(
      `with taken as (delete from stripe_pending returning stripe_customer_id, coalesce(nullif(event_name, ''), $1::text) as event_name, quantity),
       events as (select stripe_customer_id, event_name, sum(quantity) as quantity from taken group by 1, 2)
       insert into stripe_outbox (identifier, event_name, stripe_customer_id, value, window_start)
       select ${IDENTIFIER_SQL('event_name', 'stripe_customer_id', `extract(epoch from $2::timestamptz)::bigint::text`)},
              event_name, stripe_customer_id, quantity, $2
       from events where quantity > 0
       on conflict (identifier) do nothing`,
      [defaultEventName, windowStart],
    );
    await client.query('commit');
    return r.rowCount ?? 0;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export interface ClaimedEvent extends MeterEvent {
  id: string;
  attempts: number;
}

/**
 * Claims due events, at most one per customer (Stripe allows one concurrent call per customer
 * per meter), leasing them for `leaseMs` so another replica does not send them meanwhile; a
 * lease that runs out (the sidecar died mid-call) makes the event due again, and its identifier
 * keeps the re-send harmless.
 */
export async function claimDue(pool: pg.Pool, limit: number, leaseMs: number): Promise<ClaimedEvent[]> {
  const r = await pool.query<{
    id: string;
    identifier: string;
    event_name: string;
    stripe_customer_id: string;
    value: string;
    ts: string;
    attempts: number;
  }>(
    `with due as (
       select id, stripe_customer_id from stripe_outbox
       where status = 'pending' and next_attempt_at <= now()
       order by next_attempt_at, id
       limit $1 * 4
       for update skip locked
     ), one_per_customer as (
       select distinct on (stripe_customer_id) id from due order by stripe_customer_id, id
     )
     update stripe_outbox o set attempts = o.attempts + 1, next_attempt_at = now() + ($2::int * interval '1 millisecond')
     where o.id in (select id from one_per_customer order by id limit $1)
     returning o.id, o.identifier, o.event_name, o.stripe_customer_id, o.value, extract(epoch from o.window_start)::bigint as ts, o.attempts`,
    [limit, leaseMs],
  );
  return r.rows.map((row) => ({
    id: row.id,
    identifier: row.identifier,
    eventName: row.event_name,
    stripeCustomerId: row.stripe_customer_id,
    value: Number(row.value),
    timestamp: Number(row.ts),
    attempts: row.attempts,
  }));
}

export async function markSent(pool: pg.Pool, id: string): Promise<void> {
  await pool.query(`update stripe_outbox set status = 'sent', sent_at = now(), last_error = null where id = $1`, [id]);
}

export async function markRetry(pool: pg.Pool, id: string, delayMs: number, status: number | null, error: string): Promise<void> {
  await pool.query(
    `update stripe_outbox set next_attempt_at = now() + ($2::bigint * interval '1 millisecond'), last_status = $3, last_error = $4
     where id = $1 and status = 'pending'`,
    [id, Math.round(delayMs), status, error],
  );
}

export async function markParked(pool: pg.Pool, id: string, status: number, error: string): Promise<void> {
  await pool.query(`update stripe_outbox set status = 'parked', last_status = $2, last_error = $3 where id = $1`, [id, status, error]);
}

export interface OutboxStats {
  pending: number;
  parked: number;
  oldestPendingAgeSeconds: number;
}

export async function outboxStats(pool: pg.Pool): Promise<OutboxStats> {
  const r = await pool.query<{ pending: number; parked: number; oldest: number | null }>(
    `select count(*) filter (where status = 'pending')::int as pending,
            count(*) filter (where status = 'parked')::int as parked,
            extract(epoch from now() - min(created_at) filter (where status = 'pending'))::float8 as oldest
     from stripe_outbox where status <> 'sent'`,
  );
  const row = r.rows[0]!;
  return { pending: row.pending, parked: row.parked, oldestPendingAgeSeconds: Math.max(0, row.oldest ?? 0) };
}

/** Puts parked meter events back in the queue (after fixing what Stripe complained about). */
export async function requeueParkedMeterEvents(pool: pg.Pool, identifiers?: string[]): Promise<number> {
  const r = await pool.query(
    `update stripe_outbox set status = 'pending', next_attempt_at = now(), attempts = 0
     where status = 'parked' and ($1::text[] is null or identifier = any($1))`,
    [identifiers ?? null],
  );
  return r.rowCount ?? 0;
}
