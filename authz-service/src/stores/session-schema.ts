import type { Migration } from '@tollgate/common';

/**
 * Console sign-in sessions (docs/management-api.md, "Console sessions"). The cookie's value is
 * never stored: only its SHA-256, so a copy of the table signs nobody in.
 */
export const SESSION_MIGRATIONS: Migration[] = [
  {
    id: '040_console_sessions',
    sql: `
      create table console_sessions (
        token_hash    text primary key,
        kind          text not null check (kind in ('admin', 'owner')),
        key_id        text,
        user_id       text,
        created_at    timestamptz not null default now(),
        last_seen_at  timestamptz not null default now(),
        expires_at    timestamptz not null,
        check ((kind = 'admin') = (key_id is null))
      );
      create index console_sessions_key_idx on console_sessions (key_id) where key_id is not null;
      create index console_sessions_expires_idx on console_sessions (expires_at);
    `,
  },
];
