import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';

export interface SessionRow {
  kind: 'admin' | 'owner';
  keyId: string | null;
  userId: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

/** What the cookie holds: 256 random bits, base64url. */
export function newSessionToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The stored form of a session token. Unsalted SHA-256 is enough: the token is 256 random bits, not a password. */
export function sessionTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

interface Row {
  kind: 'admin' | 'owner';
  key_id: string | null;
  user_id: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
}

const fromRow = (r: Row): SessionRow => ({
  kind: r.kind,
  keyId: r.key_id,
  userId: r.user_id,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  expiresAt: r.expires_at,
});

/** console_sessions, addressed by the token's hash only. */
export class SessionStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(token: string, s: { kind: 'admin' | 'owner'; keyId: string | null; userId: string | null; maxAgeMs: number }): Promise<SessionRow> {
    const r = await this.pool.query<Row>(
      `insert into console_sessions (token_hash, kind, key_id, user_id, expires_at)
       values ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000))
       returning kind, key_id, user_id, created_at, last_seen_at, expires_at`,
      [sessionTokenHash(token), s.kind, s.keyId, s.userId, s.maxAgeMs],
    );
    return fromRow(r.rows[0]!);
  }

  /**
   * The session if it is within both lifetimes, its idle clock restarted; an expired one is
   * deleted. Postgres's clock decides, so replicas agree.
   */
  async touch(token: string, idleMs: number): Promise<SessionRow | null> {
    const hash = sessionTokenHash(token);
    const r = await this.pool.query<Row>(
      `update console_sessions set last_seen_at = now()
        where token_hash = $1 and expires_at > now() and last_seen_at + make_interval(secs => $2::double precision / 1000) > now()
        returning kind, key_id, user_id, created_at, last_seen_at, expires_at`,
      [hash, idleMs],
    );
    if (r.rows[0]) return fromRow(r.rows[0]);
    await this.pool.query('delete from console_sessions where token_hash = $1', [hash]);
    return null;
  }

  async delete(token: string): Promise<void> {
    await this.pool.query('delete from console_sessions where token_hash = $1', [sessionTokenHash(token)]);
  }

  /** Ends every session signed in with this key (it was revoked, expired or lost keys:manage). */
  async deleteForKey(keyId: string): Promise<void> {
    await this.pool.query('delete from console_sessions where key_id = $1', [keyId]);
  }
}
