import type pg from 'pg';
import { inTransaction } from '@tollgate/common';

// usage_records is partitioned by usage_day, the UTC day of started_at (migration 009): one table per
// day, `usage_records_pYYYYMMDD`, and a default partition for anything outside them. Retention
// drops whole days (a catalog change, no row-by-row delete); the roll-ups are separate tables
// and stay.

const DAY_MS = 86_400_000;
const PARTITION_PREFIX = 'usage_records_p';
const DEFAULT_PARTITION = 'usage_records_default';
/** Serialises partition maintenance across sidecar replicas (each runs it). */
const PARTITION_LOCK = 7430003;

/** Midnight UTC of the day `at` falls in. */
function utcDay(at: Date): Date {
  return new Date(Math.floor(at.getTime() / DAY_MS) * DAY_MS);
}

const isoDay = (day: Date) => day.toISOString().slice(0, 10);
const partitionName = (day: Date) => `${PARTITION_PREFIX}${isoDay(day).replaceAll('-', '')}`;

function dayOfPartition(name: string): Date | null {
  const m = /^usage_records_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
}

/** The day partitions that exist, oldest first. */
export async function listUsagePartitions(db: pg.Pool | pg.PoolClient): Promise<Date[]> {
  const r = await db.query<{ name: string }>(
    `select c.relname as name from pg_inherits i
       join pg_class c on c.oid = i.inhrelid
       join pg_class p on p.oid = i.inhparent
     where p.relname = 'usage_records'`,
  );
  return r.rows
    .map((row) => dayOfPartition(row.name))
    .filter((d): d is Date => d !== null)
    .sort((a, b) => a.getTime() - b.getTime());
}

/** The earliest moment still kept: midnight UTC `retentionDays` days before today. */
export function retentionHorizon(now: Date, retentionDays: number): Date {
  return new Date(utcDay(now).getTime() - retentionDays * DAY_MS);
}

/** Partition changes run one at a time across replicas, each in one transaction. */
function serialised<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query('select pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
    return work(client);
  });
}

/**
 * Makes sure the partitions from yesterday to `aheadDays` after today exist. A missing one is
 * built beside the table, filled with any rows of its day that went to the default partition
 * meanwhile, and then attached, so no row is ever in two places or lost in the move.
 */
export async function ensureUsagePartitions(pool: pg.Pool, now: Date, aheadDays: number): Promise<Date[]> {
  return serialised(pool, async (client) => {
    const existing = new Set((await listUsagePartitions(client)).map((d) => d.getTime()));
    const created: Date[] = [];
    const today = utcDay(now).getTime();
    for (let t = today - DAY_MS; t <= today + aheadDays * DAY_MS; t += DAY_MS) {
      if (existing.has(t)) continue;
      const day = new Date(t);
      const next = new Date(t + DAY_MS);
      const name = partitionName(day);
      await client.query(`create table ${name} (like usage_records including defaults including constraints)`);
      await client.query(
        `with moved as (delete from ${DEFAULT_PARTITION} where usage_day = $1::date returning *)
         insert into ${name} select * from moved`,
        [isoDay(day)],
      );
      await client.query(`alter table usage_records attach partition ${name} for values from ('${isoDay(day)}') to ('${isoDay(next)}')`);
      created.push(day);
    }
    return created;
  });
}

/**
 * Drops the day partitions older than the retention horizon, and rows that old in the default
 * partition. Returns the days dropped.
 */
export async function dropExpiredUsagePartitions(pool: pg.Pool, now: Date, retentionDays: number): Promise<Date[]> {
  const horizon = retentionHorizon(now, retentionDays);
  return serialised(pool, async (client) => {
    const expired = (await listUsagePartitions(client)).filter((d) => d.getTime() < horizon.getTime());
    for (const day of expired) await client.query(`drop table ${partitionName(day)}`);
    await client.query(`delete from ${DEFAULT_PARTITION} where usage_day < $1::date`, [isoDay(horizon)]);
    return expired;
  });
}
