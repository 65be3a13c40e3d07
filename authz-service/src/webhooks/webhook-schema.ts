import type { Migration } from '@tollgate/common';

/**
 * Outbound webhooks (docs/webhooks.md): the endpoints operators register, with their signing
 * secrets sealed by the vault's envelope; the delivery outbox, written in the same transaction as
 * the change it announces, so an event is never announced for a change that rolled back and
 * never lost for one that committed; and the announcements already made for time- and
 * usage-driven events (expiry, quota thresholds), so each fires once however many replicas scan.
 */
export const WEBHOOK_MIGRATIONS: Migration[] = [
  {
    id: '061_outbound_webhooks',
    sql: `
      create table webhook_endpoints (
        id                    text primary key,
        url                   text not null,
        description           text,
        events                text[] not null,
        enabled               boolean not null default true,
        master_key_id         text not null,
        wrapped_dek           bytea not null,
        ciphertext            bytea not null,
        -- After a rotation the previous secret signs too, until previous_secret_expires_at.
        previous_master_key_id text,
        previous_wrapped_dek  bytea,
        previous_ciphertext   bytea,
        previous_secret_expires_at timestamptz,
        created_at            timestamptz not null default now(),
        updated_at            timestamptz not null default now(),
        secret_rotated_at     timestamptz
      );

      create table webhook_deliveries (
        id              text primary key,
        endpoint_id     text not null references webhook_endpoints (id) on delete cascade,
        event_type      text not null,
        payload         jsonb not null,
        status          text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
        attempts        integer not null default 0,
        next_attempt_at timestamptz not null default now(),
        -- A replica sending this delivery holds it until then; a crash mid-send lets another retry it.
        leased_until    timestamptz,
        last_attempt_at timestamptz,
        last_status     integer,
        last_error      text,
        created_at      timestamptz not null default now(),
        delivered_at    timestamptz
      );
      create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where status = 'pending';
      create index webhook_deliveries_page_idx on webhook_deliveries (created_at desc, id desc);
      create index webhook_deliveries_endpoint_idx on webhook_deliveries (endpoint_id, created_at desc, id desc);

      create table webhook_announcements (
        subject      text not null,
        event_type   text not null,
        occasion     text not null,
        announced_at timestamptz not null default now(),
        primary key (subject, event_type, occasion)
      );
    `,
  },
];
