import type pg from 'pg';
import type { Logger } from '@tollgate/common';
import { migrate, type Migration } from '@tollgate/common';

const BILLING_MIGRATIONS_TABLE = 'tollgate_billing_migrations';
const BILLING_MIGRATIONS_LOCK = 7430002;

// Roll-up columns shared by the hourly and daily tables.
const rollupColumns = `
  key_id text not null,
  user_id text not null,
  credential text not null,
  total_requests bigint not null,
  billable_requests bigint not null,
  request_bytes bigint not null,
  response_bytes bigint not null,
  duration_ms_total bigint not null,
  last_request_at timestamptz not null`;

const BILLING_MIGRATIONS: Migration[] = [
  {
    id: '001_usage',
    sql: `
      -- One row per logged request with a key identity; the primary key is what makes
      -- ingestion exactly-once (a re-sent entry conflicts and is skipped).
      create table usage_records (
        request_id text primary key,
        key_id text not null,
        user_id text not null,
        credential text not null,
        stripe_customer_id text,
        method text not null,
        path text not null,
        status integer not null,
        request_bytes bigint not null,
        response_bytes bigint not null,
        duration_ms integer not null,
        started_at timestamptz not null,
        billable boolean not null,
        source text not null,
        ingested_at timestamptz not null default now()
      );
      -- BRIN: nearly free on insert, enough for time-range scans and retention deletes.
      create index usage_records_started_at on usage_records using brin (started_at);

      create table usage_hourly (bucket timestamptz not null, ${rollupColumns}, primary key (key_id, bucket));
      create index usage_hourly_user on usage_hourly (user_id, bucket);
      create table usage_daily (bucket timestamptz not null, ${rollupColumns}, primary key (key_id, bucket));
      create index usage_daily_user on usage_daily (user_id, bucket);

      -- Billable usage per Stripe customer not yet put into a meter event.
      create table stripe_pending (
        stripe_customer_id text primary key,
        quantity bigint not null
      );
      -- One row per aggregation window already sealed into the outbox (seals run once).
      create table stripe_windows (
        window_start timestamptz primary key,
        sealed_at timestamptz not null default now()
      );
      -- Meter events Stripe has not yet accepted (pending), accepted (sent) or refused (parked).
      create table stripe_outbox (
        id bigserial primary key,
        identifier text not null unique,
        event_name text not null,
        stripe_customer_id text not null,
        value bigint not null check (value > 0),
        window_start timestamptz not null,
        status text not null default 'pending' check (status in ('pending', 'sent', 'parked')),
        attempts integer not null default 0,
        next_attempt_at timestamptz not null default now(),
        last_status integer,
        last_error text,
        created_at timestamptz not null default now(),
        sent_at timestamptz
      );
      create index stripe_outbox_due on stripe_outbox (next_attempt_at) where status = 'pending';
      create index stripe_outbox_parked on stripe_outbox (id) where status = 'parked';

      -- How far the JSON access log has been read, so a restart resumes (and backfills) there.
      create table access_log_offsets (
        path text primary key,
        device text not null,
        inode text not null,
        byte_offset bigint not null,
        -- The file's first bytes (base64): a file truncated and rewritten past the old offset
        -- (copytruncate) has the same inode and maybe the same size, but not the same head.
        head text not null default '',
        updated_at timestamptz not null default now()
      );
    `,
  },
  {
    // Issue 15: the gateway's own refusals are recorded but never billed, decided from the
    // Check's verdict (not the status); service tokens are recorded, attributed to the token
    // (key_id = jti) with its project and service, and have no user. Constant defaults and
    // dropping NOT NULL change only the catalog: no table rewrite.
    id: '002_usage_decisions_and_tokens',
    sql: `
      alter table usage_records
        add column decision text not null default 'allow',
        add column error_code text,
        add column project text,
        add column service text,
        alter column user_id drop not null;
      alter table usage_hourly
        add column refused_requests bigint not null default 0,
        add column project text,
        add column service text,
        alter column user_id drop not null;
      alter table usage_daily
        add column refused_requests bigint not null default 0,
        add column project text,
        add column service text,
        alter column user_id drop not null;
    `,
  },
  {
    id: '003_access_log_offsets_by_file',
    sql: `
      -- Offsets keyed by the file's identity, not its path: the sidecar rotates the file (the
      -- renamed one is finished from its own row), and two sidecars on different hosts (pods)
      -- reading the same path no longer overwrite each other's offset. Rows from before get
      -- an empty host id; the sidecar adopts those for its path at start (offset-store.ts).
      alter table access_log_offsets add column host_id text not null default '';
      -- Where the sidecar renamed this file to; set before the rename, so a restart knows a
      -- rotation was under way and finishes the renamed file before anything else.
      alter table access_log_offsets add column rotated_to text;
      alter table access_log_offsets drop constraint access_log_offsets_pkey;
      alter table access_log_offsets add primary key (host_id, device, inode);
      create index access_log_offsets_by_path on access_log_offsets (host_id, path);
    `,
  },
  {
    // Issue 19: usage_records by day (native range partitioning), so retention drops whole
    // days. The table is rebuilt inside this migration's transaction: every row is copied
    // once (the old primary key made request ids unique, so none collides) and the old table
    // is dropped. Partitions cover the first row's day to a week ahead; the sidecar keeps
    // creating them ahead (partitions.ts), and the default partition catches anything else.
    // A partitioned table's primary key must contain the partition key, so the key is
    // (request_id, usage_day), usage_day being the UTC day of started_at: Envoy stamps a
    // request's start once and every delivery of it (gRPC stream, file, re-sends) carries
    // that stamp, so the day is the same and the key is unique exactly when the request id is
    // (docs/billing.md, "Retention").
    id: '009_usage_records_by_day',
    sql: `
      alter table usage_records rename to usage_records_unpartitioned;
      alter table usage_records_unpartitioned rename constraint usage_records_pkey to usage_records_unpartitioned_pkey;
      alter index usage_records_started_at rename to usage_records_unpartitioned_started_at;
      create table usage_records (like usage_records_unpartitioned including defaults including constraints, usage_day date not null)
        partition by range (usage_day);
      alter table usage_records add primary key (request_id, usage_day);
      create index usage_records_started_at on usage_records using brin (started_at);
      create table usage_records_default partition of usage_records default;
      do $$
      declare
        day date;
        last date := (now() at time zone 'UTC')::date + 7;
      begin
        select coalesce(min(started_at at time zone 'UTC')::date, (now() at time zone 'UTC')::date - 1),
               greatest(last, coalesce(max(started_at at time zone 'UTC')::date, last))
          into day, last from usage_records_unpartitioned;
        while day <= last loop
          execute format('create table %I partition of usage_records for values from (%L) to (%L)',
                         'usage_records_p' || to_char(day, 'YYYYMMDD'), day, day + 1);
          day := day + 1;
        end loop;
      end $$;
      insert into usage_records select u.*, (u.started_at at time zone 'UTC')::date from usage_records_unpartitioned u;
      drop table usage_records_unpartitioned;
    `,
  },
  {
    // Issue 17 (the console's charts): requests by outcome class, from the response status,
    // kept in the roll-ups so a chart reads buckets, never usage_records. 'other' is what is
    // left of total_requests (1xx, 4xx other than 401/403/429, and rows rolled up before this
    // migration), so it needs no column. Constant defaults: no table rewrite.
    id: '004_usage_outcome_classes',
    sql: `
      alter table usage_hourly
        add column allowed_requests bigint not null default 0,
        add column unauthenticated_requests bigint not null default 0,
        add column forbidden_requests bigint not null default 0,
        add column rate_limited_requests bigint not null default 0,
        add column server_error_requests bigint not null default 0;
      alter table usage_daily
        add column allowed_requests bigint not null default 0,
        add column unauthenticated_requests bigint not null default 0,
        add column forbidden_requests bigint not null default 0,
        add column rate_limited_requests bigint not null default 0,
        add column server_error_requests bigint not null default 0;
      -- The operator overview reads all keys' buckets by time.
      create index usage_hourly_bucket on usage_hourly (bucket);
      create index usage_daily_bucket on usage_daily (bucket);
    `,
  },
  {
    // Issue 18 (ROUTE_COSTS) and 21 (cost allocation): what a request costs, in the cost units
    // authz-service publishes (1 unless ROUTE_COSTS weighs its route), on the row and in the
    // roll-ups, and stripe_pending counts cost units from here on (it counted requests, each
    // of which cost 1, so its rows need no change). The roll-ups' existing rows cost 1 per
    // request. The sort puts this before 009 on a fresh database and after it on one that has
    // 009 already: a column added to the parent of a partitioned table reaches every
    // partition, and 009's LIKE copies it when 009 runs later, so both orders give one schema.
    // Constant defaults: no rewrite of usage_records.
    id: '005_usage_cost_units',
    sql: `
      alter table usage_records add column cost integer not null default 1;
      alter table usage_hourly
        add column cost_units bigint not null default 0,
        add column billable_cost_units bigint not null default 0;
      update usage_hourly set cost_units = total_requests, billable_cost_units = billable_requests;
      alter table usage_daily
        add column cost_units bigint not null default 0,
        add column billable_cost_units bigint not null default 0;
      update usage_daily set cost_units = total_requests, billable_cost_units = billable_requests;
    `,
  },
  {
    // Issue 21 (cost allocation): which provider a request was for and whose credential served
    // it (byok, user, or operator with the operator credential's id, never a secret), and the
    // roll-ups kept per provider and source so reads break totals down without reading rows.
    // The roll-ups' key takes the two columns; '' stands for "none" there (a primary key
    // column cannot be null, and NULLS NOT DISTINCT needs Postgres 15): rows from before are
    // the '' / '' group. stripe_pending is kept per meter event name too, so managed usage
    // can go to a meter of its own per provider; '' is the configured default meter (what
    // rows from before were meant for). operator_credential_statuses (issue 21 item 2) keeps
    // the upstream's error statuses per operator credential.
    id: '006_usage_credential_source',
    sql: `
      alter table usage_records
        add column provider text,
        add column credential_source text,
        add column operator_credential_id text;
      alter table usage_hourly
        add column provider text not null default '',
        add column credential_source text not null default '';
      alter table usage_hourly drop constraint usage_hourly_pkey;
      alter table usage_hourly add primary key (key_id, bucket, provider, credential_source);
      alter table usage_daily
        add column provider text not null default '',
        add column credential_source text not null default '';
      alter table usage_daily drop constraint usage_daily_pkey;
      alter table usage_daily add primary key (key_id, bucket, provider, credential_source);
      alter table stripe_pending add column event_name text not null default '';
      alter table stripe_pending drop constraint stripe_pending_pkey;
      alter table stripe_pending add primary key (stripe_customer_id, event_name);
      -- What the upstream answered requests served with each operator credential, error
      -- statuses only (a few rows per credential): authz-service reads it to take a credential
      -- its provider rejects out of rotation, without reading usage_records.
      create table operator_credential_statuses (
        operator_credential_id text not null,
        status integer not null,
        requests bigint not null,
        last_seen_at timestamptz not null,
        primary key (operator_credential_id, status)
      );
    `,
  },
];

/**
 * Applies the usage migrations; `only` (tests) applies just the ids it accepts, to build an older
 * database: ids below one (what a fresh install had then), or every id but some (a database
 * that took migrations in the order they were released, which is not the ids' order).
 */
export function migrateBilling(pool: pg.Pool, logger?: Logger, only?: (id: string) => boolean): Promise<string[]> {
  const migrations = only ? BILLING_MIGRATIONS.filter((m) => only(m.id)) : BILLING_MIGRATIONS;
  return migrate(pool, { table: BILLING_MIGRATIONS_TABLE, lockKey: BILLING_MIGRATIONS_LOCK, migrations }, logger);
}
