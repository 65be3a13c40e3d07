import type { Migration } from '@tollgate/common';

/**
 * Stripe subscription lifecycle (docs/billing.md): a suspension flag of its own on keys (never
 * `is_active`, so resuming cannot re-enable a key an operator disabled), the plan a subscription
 * put the key on, the webhook events already applied (dedupe by id), the newest event applied
 * per Stripe object (out-of-order deliveries are ignored), and the billing events worth telling.
 */
export const BILLING_MIGRATIONS: Migration[] = [
  {
    id: '050_billing_lifecycle',
    sql: `
      alter table api_keys add column billing_suspended_at timestamptz;
      alter table api_keys add column plan text;
      create index api_keys_stripe_customer_idx on api_keys (stripe_customer_id) where stripe_customer_id is not null;

      create table stripe_webhook_events (
        event_id    text primary key,
        type        text not null,
        received_at timestamptz not null default now()
      );

      create table stripe_object_versions (
        object_id       text primary key,
        last_created    timestamptz not null,
        last_event_id   text not null
      );

      create table billing_events (
        id                 bigserial primary key,
        at                 timestamptz not null default now(),
        event_id           text not null,
        type               text not null,
        stripe_customer_id text,
        details            jsonb not null default '{}'::jsonb
      );
      create index billing_events_customer_idx on billing_events (stripe_customer_id, at desc);
      create index billing_events_type_idx on billing_events (type, at desc);
    `,
  },
];
