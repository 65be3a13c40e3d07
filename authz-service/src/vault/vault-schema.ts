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
];
