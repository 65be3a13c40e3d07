import type { Migration } from '@tollgate/common';
import { TOKEN_MIGRATIONS } from './token-schema.js';
import { VAULT_MIGRATIONS } from '../vault/vault-schema.js';
import { SESSION_MIGRATIONS } from './session-schema.js';
import { BILLING_MIGRATIONS } from '../billing/billing-schema.js';
import { WEBHOOK_MIGRATIONS } from '../webhooks/webhook-schema.js';

/** authz-service's schema, applied at start by `migrate()` (advisory-locked, idempotent). */
export const AUTHZ_MIGRATIONS: Migration[] = [
  {
    id: '001_api_keys',
    sql: `
      create table api_keys (
        id                      text primary key,
        user_id                 text not null,
        name                    text not null,
        description             text,
        key_prefix              text not null,
        key_hash                text not null unique,
        -- Rotation: the previous secret keeps working until previous_key_expires_at.
        previous_key_hash       text unique,
        previous_key_expires_at timestamptz,
        scopes                  text[] not null default '{}',
        permission_set          text,
        rate_limit_per_minute   integer check (rate_limit_per_minute is null or rate_limit_per_minute > 0),
        rate_limit_per_day      integer check (rate_limit_per_day is null or rate_limit_per_day > 0),
        expires_at              timestamptz,
        is_active               boolean not null default true,
        revoked_at              timestamptz,
        revoked_by              text,
        revoked_reason          text,
        last_used_at            timestamptz,
        usage_count             bigint not null default 0,
        metadata                jsonb not null default '{}'::jsonb,
        stripe_customer_id      text,
        created_by              text,
        created_at              timestamptz not null default now(),
        updated_at              timestamptz not null default now()
      );
      create index api_keys_user_idx on api_keys (user_id, created_at desc, id);
      create index api_keys_expiry_idx on api_keys (expires_at) where expires_at is not null and is_active;

      create table audit_log (
        id          bigserial primary key,
        at          timestamptz not null default now(),
        actor       text not null,
        action      text not null,
        key_id      text,
        user_id     text,
        details     jsonb not null default '{}'::jsonb
      );
      create index audit_log_key_idx on audit_log (key_id, at desc);
      create index audit_log_user_idx on audit_log (user_id, at desc);

      create table idempotency_keys (
        scope        text not null,
        key          text not null,
        request_hash text not null,
        status       integer not null,
        response     jsonb not null,
        created_at   timestamptz not null default now(),
        primary key (scope, key)
      );
    `,
  },
  {
    // Key-management API: keyset pagination (newest first) over one user's keys and over all
    // keys, and the idempotency-record purge.
    id: '010_key_management',
    sql: `
      create index api_keys_user_page_idx on api_keys (user_id, created_at desc, id desc);
      create index api_keys_page_idx on api_keys (created_at desc, id desc);
      create index idempotency_keys_created_idx on idempotency_keys (created_at);
    `,
  },
  ...TOKEN_MIGRATIONS,
  ...VAULT_MIGRATIONS,
  ...SESSION_MIGRATIONS,
  ...BILLING_MIGRATIONS,
  {
    // The key's own monthly quota (cost units per calendar month, UTC), set by an operator;
    // the count lives in Redis (check/rate-limit-script.ts).
    id: '060_key_quotas',
    sql: `alter table api_keys add column monthly_quota bigint check (monthly_quota is null or monthly_quota > 0);`,
  },
  ...WEBHOOK_MIGRATIONS,
];

export const AUTHZ_MIGRATIONS_TABLE = 'tollgate_authz_migrations';
/** Arbitrary but fixed: the advisory lock that serialises authz-service migrations. */
export const AUTHZ_MIGRATIONS_LOCK = 7_430_001;
