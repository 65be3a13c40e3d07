import type { Migration } from '@tollgate/common';

/** The service-token registry (seed 001's gateway_tokens). */
export const TOKEN_MIGRATIONS: Migration[] = [
  {
    id: '020_gateway_tokens',
    sql: `
      create table gateway_tokens (
        jti             text primary key,
        project         text not null,
        service         text not null,
        description     text,
        routes          text[] not null,
        kid             text not null,
        created_at      timestamptz not null default now(),
        created_by      text,
        expires_at      timestamptz not null,
        last_used_at    timestamptz,
        is_active       boolean not null default true,
        revoked_at      timestamptz,
        revoked_by      text,
        revoked_reason  text
      );
      create index gateway_tokens_active_idx on gateway_tokens (is_active, created_at desc);
      create index gateway_tokens_project_idx on gateway_tokens (project, service);
    `,
  },
];
