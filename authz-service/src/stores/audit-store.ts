import type { Queryable } from './key-store.js';

export type AuditAction =
  | 'key.created'
  | 'key.updated'
  | 'key.revoked'
  | 'key.extended'
  | 'key.rotated'
  | 'key.deleted'
  | 'token.created'
  | 'token.revoked'
  | 'provider_key.set'
  | 'provider_key.deleted'
  | 'operator_credential.created'
  | 'operator_credential.rotated'
  | 'operator_credential.deleted'
  | 'vault.rewrapped'
  | 'key.billing_suspended'
  | 'key.billing_resumed'
  | 'key.plan_changed'
  | 'billing.event'
  | 'webhook_endpoint.created'
  | 'webhook_endpoint.updated'
  | 'webhook_endpoint.secret_rotated'
  | 'webhook_endpoint.deleted'
  | 'webhook_delivery.retried';

/**
 * One row of the audit log: who did what to which key. `details` holds the changed field names
 * and non-secret values (limits, scopes, expiry, reason); never a key, hash or token.
 */
export interface AuditEntry {
  /** `admin` or `key:<id>` of the management key that acted. */
  actor: string;
  action: AuditAction;
  /** The key acted on; null for service tokens and the vault (their ids go in details). */
  keyId: string | null;
  userId: string | null;
  details?: Record<string, unknown>;
}

export interface AuditRow extends AuditEntry {
  id: number;
  at: Date;
  details: Record<string, unknown>;
}

/** Writes the audit log inside the caller's transaction, so a change and its record commit together. */
export class AuditStore {
  async record(e: AuditEntry, db: Queryable): Promise<void> {
    await db.query(`insert into audit_log (actor, action, key_id, user_id, details) values ($1, $2, $3, $4, $5)`, [
      e.actor,
      e.action,
      e.keyId,
      e.userId,
      e.details ?? {},
    ]);
  }

  /** Who set the key's `is_active` to false last (`admin` or `key:<id>`), or null if no call did. */
  async lastSuspendedBy(keyId: string, db: Queryable): Promise<string | null> {
    const r = await db.query<{ actor: string }>(
      `select actor from audit_log where key_id = $1 and action = 'key.updated' and details -> 'is_active' = 'false'::jsonb
        order by at desc, id desc limit 1`,
      [keyId],
    );
    return r.rows[0]?.actor ?? null;
  }

  async listForKey(keyId: string, db: Queryable): Promise<AuditRow[]> {
    const r = await db.query<{
      id: string;
      at: Date;
      actor: string;
      action: AuditAction;
      key_id: string | null;
      user_id: string | null;
      details: Record<string, unknown>;
    }>(`select id, at, actor, action, key_id, user_id, details from audit_log where key_id = $1 order by at, id`, [keyId]);
    return r.rows.map((row) => ({
      id: Number(row.id),
      at: row.at,
      actor: row.actor,
      action: row.action,
      keyId: row.key_id,
      userId: row.user_id,
      details: row.details,
    }));
  }
}
