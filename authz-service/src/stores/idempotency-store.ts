import type { Queryable } from './key-store.js';

/** How long an Idempotency-Key is remembered; a retry after that creates a new resource. */
export const IDEMPOTENCY_TTL_HOURS = 24;

export type IdempotencyClaim =
  | { state: 'claimed' }
  | { state: 'replay'; requestHash: string; status: number; response: unknown }
  | { state: 'in_progress'; requestHash: string };

/**
 * Idempotency-Key records (table `idempotency_keys`). A POST claims its key inside its own
 * transaction; a concurrent retry with the same key waits on the row lock until the first one
 * commits (and then replays it) or rolls back (and then claims it). Responses are stored without
 * any plaintext secret: see docs/management-api.md, "Idempotency".
 */
export class IdempotencyStore {
  async claim(scope: string, key: string, requestHash: string, db: Queryable): Promise<IdempotencyClaim> {
    // Forget expired records first so an old key can be reused after the TTL.
    await db.query(`delete from idempotency_keys where scope = $1 and key = $2 and created_at < now() - make_interval(hours => $3)`, [
      scope,
      key,
      IDEMPOTENCY_TTL_HOURS,
    ]);
    const inserted = await db.query(
      `insert into idempotency_keys (scope, key, request_hash, status, response) values ($1, $2, $3, 0, 'null'::jsonb)
       on conflict (scope, key) do nothing`,
      [scope, key, requestHash],
    );
    if (inserted.rowCount === 1) return { state: 'claimed' };
    const r = await db.query<{ request_hash: string; status: number; response: unknown }>(
      `select request_hash, status, response from idempotency_keys where scope = $1 and key = $2`,
      [scope, key],
    );
    const row = r.rows[0];
    // Gone between the two statements (expired and purged by another request): treat as in progress.
    if (!row || row.status === 0) return { state: 'in_progress', requestHash: row?.request_hash ?? requestHash };
    return { state: 'replay', requestHash: row.request_hash, status: row.status, response: row.response };
  }

  async complete(scope: string, key: string, status: number, response: unknown, db: Queryable): Promise<void> {
    await db.query(`update idempotency_keys set status = $3, response = $4 where scope = $1 and key = $2`, [scope, key, status, JSON.stringify(response)]);
  }

  /**
   * Housekeeping: drops up to `limit` records older than the TTL (oldest first, by the created_at
   * index). Rows another replica's sweep holds are skipped, not waited for.
   */
  async purgeExpired(db: Queryable, limit: number): Promise<number> {
    const r = await db.query(
      `delete from idempotency_keys where ctid = any(array(
         select ctid from idempotency_keys where created_at < now() - make_interval(hours => $1)
          order by created_at limit $2 for update skip locked))`,
      [IDEMPOTENCY_TTL_HOURS, limit],
    );
    return r.rowCount ?? 0;
  }
}
