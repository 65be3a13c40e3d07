import type { Migration } from '@tollgate/common';

export const VAULT_MIGRATIONS: Migration[] = [
  {
    id: '030_provider_keys',
    sql: `
      create table provider_keys (
        user_id        text not null,
        provider       text not null,
        master_key_id  text not null,
        wrapped_dek    bytea not null,
        ciphertext     bytea not null,
        fingerprint    text not null,
        created_at     timestamptz not null default now(),
        updated_at     timestamptz not null default now(),
        primary key (user_id, provider)
      );
      create index provider_keys_master_idx on provider_keys (master_key_id);
    `,
  },
  {
    // The managed phase: credentials owned by the operator, several per provider, each with
    // its own id (bound into the seal) and a label people can tell apart.
    id: '070_operator_credentials',
    sql: `
      create table operator_credentials (
        id             text primary key,
        provider       text not null,
        label          text not null,
        master_key_id  text not null,
        wrapped_dek    bytea not null,
        ciphertext     bytea not null,
        fingerprint    text not null,
        created_at     timestamptz not null default now(),
        updated_at     timestamptz not null default now()
      );
      create index operator_credentials_provider_idx on operator_credentials (provider, id);
    `,
  },
];
