import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TestStack } from '@tollgate/devstack';
import { dropExpiredUsagePartitions, ensureUsagePartitions, listUsagePartitions, migrateBilling } from '@tollgate/usage-model';
import { sealWindow } from '../src/stores/stripe-outbox.js';
import { alsEntry, sendStream, startSidecarStack, waitUntil } from './helpers.js';

// usage_records partitioned by day (migration 009) and USAGE_RETENTION_DAYS, against real
// Postgres: the migration of a populated table, partitions made ahead, whole days dropped,
// and a replayed request older than the retention never counted twice.
const infra = inject('infra');
const stack = new TestStack();
afterAll(() => stack.stop());

const DAY = 86_400_000;
const PARTITIONING = '009_usage_records_by_day';

async function pool(label: string): Promise<pg.Pool> {
  const db = await stack.database(infra, label);
  const p = new pg.Pool({ connectionString: db.url, max: 4 });
  stack.defer(`pool ${label}`, () => p.end());
  return p;
}

/** Rows as the sidecar writes them, `daysAgo` before now (usage_day only once the table has it). */
async function insertRows(db: pg.Pool, keyId: string, daysAgo: number, n: number): Promise<void> {
  const at = new Date(Date.now() - daysAgo * DAY);
  const partitioned = (await db.query("select 1 from information_schema.columns where table_name = 'usage_records' and column_name = 'usage_day'")).rowCount;
  const day = partitioned ? ', usage_day' : '';
  const dayValue = partitioned ? ", ($2::timestamptz at time zone 'UTC')::date" : '';
  await db.query(
    `insert into usage_records (request_id, key_id, user_id, credential, method, path, status, request_bytes, response_bytes,
                                duration_ms, started_at, billable, source${day})
     select gen_random_uuid()::text, $1, 'user_r', 'api_key', 'GET', '/hello', 200, i, 2 * i, 3, $2::timestamptz, true, 'als'${dayValue}
     from generate_series(1, $3) as i`,
    [keyId, at, n],
  );
}

const totals = async (db: pg.Pool) =>
  (
    await db.query<{ rows: number; ids: number; bytes: string; by_key: Record<string, number> }>(
      `select count(*)::int as rows, count(distinct request_id)::int as ids, sum(request_bytes)::text as bytes,
              (select json_object_agg(key_id, n) from (select key_id, count(*)::int as n from usage_records group by 1) k) as by_key
       from usage_records`,
    )
  ).rows[0]!;

const partitionOf = async (db: pg.Pool, keyId: string) =>
  (await db.query<{ part: string }>('select distinct tableoid::regclass::text as part from usage_records where key_id = $1', [keyId])).rows.map((r) => r.part);

const dayName = (daysAgo: number) => `usage_records_p${new Date(Date.now() - daysAgo * DAY).toISOString().slice(0, 10).replaceAll('-', '')}`;

describe('usage_records partitioned by day', () => {
  it('the migration moves a populated table into day partitions without losing or doubling a row', async () => {
    const db = await pool('usage_partition_migration');
    await migrateBilling(db, undefined, (id) => id < PARTITIONING);
    await insertRows(db, 'key_old', 400, 20);
    await insertRows(db, 'key_week', 5, 300);
    await insertRows(db, 'key_today', 0, 150);
    const before = await totals(db);
    expect(before.rows).toBe(470);

    expect(await migrateBilling(db)).toContain(PARTITIONING);
    expect(await totals(db)).toEqual(before);
    const kind = await db.query<{ relkind: string }>("select relkind from pg_class where relname = 'usage_records'");
    expect(kind.rows[0]!.relkind).toBe('p');
    // Every row sits in its own day's partition; one per day from the oldest row to a week ahead.
    expect(await partitionOf(db, 'key_old')).toEqual([dayName(400)]);
    expect(await partitionOf(db, 'key_week')).toEqual([dayName(5)]);
    expect(await partitionOf(db, 'key_today')).toEqual([dayName(0)]);
    expect((await listUsagePartitions(db)).length).toBe(400 + 7 + 1);
    // The primary key still refuses a request id already recorded that day, even with a
    // start time that differs (a second delivery of the same request).
    const dup = await db.query<{ request_id: string; started_at: Date }>("select request_id, started_at from usage_records where key_id = 'key_week' limit 1");
    const again = await db.query(
      `insert into usage_records (request_id, key_id, user_id, credential, method, path, status, request_bytes, response_bytes,
                                  duration_ms, started_at, billable, source, usage_day)
       values ($1, 'key_week', 'user_r', 'api_key', 'GET', '/hello', 200, 1, 1, 1, $2::timestamptz + interval '1 ms', true, 'file',
               ($2::timestamptz at time zone 'UTC')::date)
       on conflict (request_id, usage_day) do nothing`,
      [dup.rows[0]!.request_id, dup.rows[0]!.started_at],
    );
    expect(again.rowCount).toBe(0);
    expect((await totals(db)).rows).toBe(470);
  });

  it('retention drops whole expired days and keeps the roll-ups', async () => {
    const db = await pool('usage_partition_retention');
    await migrateBilling(db, undefined, (id) => id < PARTITIONING);
    await insertRows(db, 'key_ancient', 90, 10);
    await insertRows(db, 'key_edge', 35, 10);
    await insertRows(db, 'key_recent', 34, 10);
    await migrateBilling(db);
    const bucket = new Date(Date.now() - 90 * DAY);
    await db.query(
      `insert into usage_daily (bucket, key_id, user_id, credential, total_requests, billable_requests, request_bytes, response_bytes,
                                duration_ms_total, last_request_at)
       values (date_trunc('day', $1::timestamptz at time zone 'UTC') at time zone 'UTC', 'key_ancient', 'user_r', 'api_key', 10, 10, 55, 110, 30, $1)`,
      [bucket],
    );

    const dropped = await dropExpiredUsagePartitions(db, new Date(), 35);
    expect(dropped.length).toBe(90 - 35);
    const left = (await totals(db)).by_key;
    expect(left).toEqual({ key_edge: 10, key_recent: 10 });
    expect((await db.query("select total_requests::int as n from usage_daily where key_id = 'key_ancient'")).rows[0]!.n).toBe(10);
    // Run again: nothing more to drop.
    expect(await dropExpiredUsagePartitions(db, new Date(), 35)).toEqual([]);
  });

  it('a day without its partition lands in the default one and moves when the partition is made', async () => {
    const db = await pool('usage_partition_ahead');
    await migrateBilling(db);
    await insertRows(db, 'key_future', -20, 5);
    expect(await partitionOf(db, 'key_future')).toEqual(['usage_records_default']);

    const created = await ensureUsagePartitions(db, new Date(Date.now() + 15 * DAY), 7);
    expect(created.length).toBeGreaterThan(0);
    expect(await partitionOf(db, 'key_future')).toEqual([dayName(-20)]);
    expect((await totals(db)).rows).toBe(5);
    expect(await ensureUsagePartitions(db, new Date(Date.now() + 15 * DAY), 7)).toEqual([]);
  });
});

describe('cost units and credential sources (usage-model 005, 006)', () => {
  const ADDED = ['005_usage_cost_units', '006_usage_credential_source'];
  /** Columns (name, type, nullability, default) and primary keys of the usage tables, order aside. */
  const schemaOf = async (db: pg.Pool) => ({
    columns: (
      await db.query(
        `select table_name, column_name, data_type, is_nullable, column_default from information_schema.columns
         where table_name in ('usage_records', 'usage_hourly', 'usage_daily', 'stripe_pending', 'stripe_outbox') order by 1, 2`,
      )
    ).rows,
    keys: (
      await db.query(
        `select c.conrelid::regclass::text as t, array_agg(a.attname::text order by a.attname) as cols from pg_constraint c
         join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
         where c.contype = 'p' and c.conrelid::regclass::text in ('usage_records', 'usage_hourly', 'usage_daily', 'stripe_pending') group by 1 order by 1`,
      )
    ).rows,
  });

  it('reach every partition of a database that had 009 first, keep its usage, and leave the schema a fresh install has', async () => {
    // Deployed databases took 009 before 005 and 006 existed; a fresh one sorts them before 009.
    const db = await pool('usage_cost_upgrade');
    await migrateBilling(db, undefined, (id) => !ADDED.includes(id));
    await insertRows(db, 'key_before', 1, 5);
    await insertRows(db, 'key_later', -20, 2);
    expect(await partitionOf(db, 'key_later')).toEqual(['usage_records_default']);
    await db.query(
      `insert into usage_hourly (bucket, key_id, user_id, credential, total_requests, billable_requests, request_bytes, response_bytes,
                                 duration_ms_total, last_request_at)
       values (date_trunc('hour', now()), 'key_before', 'user_r', 'api_key', 5, 4, 0, 0, 0, now())`,
    );
    await db.query(`insert into stripe_pending (stripe_customer_id, quantity) values ('cus_before', 4)`);

    expect(await migrateBilling(db)).toEqual(ADDED);
    // Requests from before cost one unit each and were for no provider.
    const before = await db.query("select distinct cost, provider, credential_source, operator_credential_id from usage_records where key_id = 'key_before'");
    expect(before.rows).toEqual([{ cost: 1, provider: null, credential_source: null, operator_credential_id: null }]);
    const rollup = await db.query(
      "select cost_units::int, billable_cost_units::int, provider, credential_source from usage_hourly where key_id = 'key_before'",
    );
    expect(rollup.rows).toEqual([{ cost_units: 5, billable_cost_units: 4, provider: '', credential_source: '' }]);
    // Every partition, the default one included, has the new columns.
    const parts = await db.query<{ part: string; n: number }>(
      `select c.relname as part, count(a.attname) filter (where a.attname in ('cost', 'provider', 'credential_source', 'operator_credential_id'))::int as n
       from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
       join pg_attribute a on a.attrelid = c.oid and not a.attisdropped
       where p.relname = 'usage_records' group by 1`,
    );
    expect(parts.rows.length).toBeGreaterThan(8);
    expect(parts.rows.filter((r) => r.n !== 4)).toEqual([]);
    // A partition made afterwards still takes its day's rows over from the default one.
    await ensureUsagePartitions(db, new Date(Date.now() + 15 * DAY), 7);
    expect(await partitionOf(db, 'key_later')).toEqual([dayName(-20)]);
    // Usage pending from before the migration goes to the default meter at the next seal.
    await sealWindow(db, 'api_requests', new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000));
    expect((await db.query('select event_name, stripe_customer_id, value::int from stripe_outbox')).rows).toEqual([
      { event_name: 'api_requests', stripe_customer_id: 'cus_before', value: 4 },
    ]);

    const fresh = await pool('usage_cost_fresh');
    await migrateBilling(fresh);
    expect(await schemaOf(db)).toEqual(await schemaOf(fresh));
  });
});

describe('the sidecar keeps partitions and never re-counts past the retention', () => {
  it('makes the partitions ahead at start and skips a replayed request older than USAGE_RETENTION_DAYS', async () => {
    const { sidecar, client } = await startSidecarStack(stack, infra, 'usage_retention_sidecar', { USAGE_RETENTION_DAYS: '30' });
    const days = (await listUsagePartitions(sidecar.pool)).map((d) => d.getTime());
    const today = Math.floor(Date.now() / DAY) * DAY;
    for (let d = today - DAY; d <= today + 7 * DAY; d += DAY) expect(days).toContain(d);

    const identity = { user_id: 'user_ret', key_id: 'key_ret', credential: 'api_key' };
    const old = alsEntry({ identity, startMs: Date.now() - 31 * DAY });
    const recent = alsEntry({ identity, startMs: Date.now() - 29 * DAY });
    const now = alsEntry({ identity, requestId: randomUUID() });
    await sendStream(client, [[old, recent, now]]);
    await waitUntil('two rows', async () => {
      const r = await sidecar.pool.query<{ n: number }>("select count(*)::int as n from usage_records where key_id = 'key_ret'");
      return r.rows[0]!.n === 2 || undefined;
    });
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_billing_entries_skipped_total\{[^}]*reason="past_retention"[^}]*\} 1/);
    expect(metrics).toMatch(/tollgate_billing_usage_partitions\{[^}]*\} 9\b/);
    const ids = (await sidecar.pool.query<{ request_id: string }>("select request_id from usage_records where key_id = 'key_ret'")).rows.map(
      (r) => r.request_id,
    );
    expect(ids.sort()).toEqual([recent.request!.requestId, now.request!.requestId].sort());
  });
});
