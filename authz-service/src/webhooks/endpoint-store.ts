import type pg from 'pg';
import type { Queryable } from '../stores/key-store.js';
import type { RowOf } from '../stores/row-of.js';
import type { SealedSecret } from '../vault/envelope.js';
import type { WebhookEventType } from './events.js';

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  events: WebhookEventType[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  secretRotatedAt: Date | null;
  /** Until then the previous secret signs deliveries too (a receiver mid-rotation accepts either). */
  previousSecretExpiresAt: Date | null;
}

/** The endpoint with its sealed secrets: for the dispatcher, never for an answer. */
export interface SealedWebhookEndpoint extends WebhookEndpoint {
  secret: SealedSecret;
  previousSecret: SealedSecret | null;
}

/** A webhook_endpoints row: the endpoint's fields, and its sealed secrets' columns. */
type Row = RowOf<WebhookEndpoint> & {
  master_key_id: string;
  wrapped_dek: Buffer;
  ciphertext: Buffer;
  previous_master_key_id: string | null;
  previous_wrapped_dek: Buffer | null;
  previous_ciphertext: Buffer | null;
};

function toEndpoint(r: Row): WebhookEndpoint {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    events: r.events,
    enabled: r.enabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    secretRotatedAt: r.secret_rotated_at,
    previousSecretExpiresAt: r.previous_secret_expires_at,
  };
}

function toSealed(r: Row): SealedWebhookEndpoint {
  const previousLive = r.previous_master_key_id && r.previous_wrapped_dek && r.previous_ciphertext;
  return {
    ...toEndpoint(r),
    secret: { masterKeyId: r.master_key_id, wrappedDek: r.wrapped_dek, ciphertext: r.ciphertext },
    previousSecret: previousLive ? { masterKeyId: r.previous_master_key_id!, wrappedDek: r.previous_wrapped_dek!, ciphertext: r.previous_ciphertext! } : null,
  };
}

/** One of an endpoint's two seals, as a rewrap walks them. */
export interface EndpointSeal {
  id: string;
  slot: 'current' | 'previous';
  sealed: SealedSecret;
}

export interface EndpointChanges {
  url?: string;
  description?: string | null;
  events?: WebhookEventType[];
  enabled?: boolean;
}

/** Registered webhook endpoints (table webhook_endpoints, migration 061). */
export class WebhookEndpointStore {
  constructor(private readonly pool: pg.Pool) {}

  async insert(
    e: { id: string; url: string; description: string | null; events: WebhookEventType[]; enabled: boolean; secret: SealedSecret },
    db: Queryable = this.pool,
  ): Promise<WebhookEndpoint> {
    const r = await db.query<Row>(
      `insert into webhook_endpoints (id, url, description, events, enabled, master_key_id, wrapped_dek, ciphertext)
       values ($1, $2, $3, $4, $5, $6, $7, $8) returning *`,
      [e.id, e.url, e.description, e.events, e.enabled, e.secret.masterKeyId, e.secret.wrappedDek, e.secret.ciphertext],
    );
    return toEndpoint(r.rows[0]!);
  }

  async list(db: Queryable = this.pool): Promise<WebhookEndpoint[]> {
    const r = await db.query<Row>('select * from webhook_endpoints order by created_at, id');
    return r.rows.map(toEndpoint);
  }

  async get(id: string, db: Queryable = this.pool): Promise<WebhookEndpoint | null> {
    const r = await db.query<Row>('select * from webhook_endpoints where id = $1', [id]);
    return r.rows[0] ? toEndpoint(r.rows[0]) : null;
  }

  async getSealed(id: string, db: Queryable = this.pool): Promise<SealedWebhookEndpoint | null> {
    const r = await db.query<Row>('select * from webhook_endpoints where id = $1', [id]);
    return r.rows[0] ? toSealed(r.rows[0]) : null;
  }

  async update(id: string, c: EndpointChanges, db: Queryable = this.pool): Promise<WebhookEndpoint | null> {
    const r = await db.query<Row>(
      `update webhook_endpoints set
         url = coalesce($2, url),
         description = case when $3::boolean then $4 else description end,
         events = coalesce($5, events),
         enabled = coalesce($6, enabled),
         updated_at = now()
       where id = $1 returning *`,
      [id, c.url ?? null, c.description !== undefined, c.description ?? null, c.events ?? null, c.enabled ?? null],
    );
    return r.rows[0] ? toEndpoint(r.rows[0]) : null;
  }

  /** A new current secret; the old one keeps signing until `previousUntil` (null: it stops now). */
  async rotateSecret(id: string, secret: SealedSecret, previousUntil: Date | null, db: Queryable = this.pool): Promise<WebhookEndpoint | null> {
    const r = await db.query<Row>(
      `update webhook_endpoints set
         previous_master_key_id = case when $5::timestamptz is null then null else master_key_id end,
         previous_wrapped_dek   = case when $5::timestamptz is null then null else wrapped_dek end,
         previous_ciphertext    = case when $5::timestamptz is null then null else ciphertext end,
         previous_secret_expires_at = $5,
         master_key_id = $2, wrapped_dek = $3, ciphertext = $4,
         secret_rotated_at = now(), updated_at = now()
       where id = $1 returning *`,
      [id, secret.masterKeyId, secret.wrappedDek, secret.ciphertext, previousUntil],
    );
    return r.rows[0] ? toEndpoint(r.rows[0]) : null;
  }

  /** Seals not under `masterKeyId`: current secrets, and previous ones still inside their grace. */
  async sealsNotUnder(masterKeyId: string, limit: number, db: Queryable = this.pool): Promise<EndpointSeal[]> {
    const r = await db.query<{ id: string; slot: 'current' | 'previous'; master_key_id: string; wrapped_dek: Buffer; ciphertext: Buffer }>(
      `select id, 'current' as slot, master_key_id, wrapped_dek, ciphertext from webhook_endpoints where master_key_id <> $1
       union all
       select id, 'previous', previous_master_key_id, previous_wrapped_dek, previous_ciphertext from webhook_endpoints
        where previous_master_key_id <> $1 and previous_secret_expires_at > now()
       order by id, slot limit $2`,
      [masterKeyId, limit],
    );
    return r.rows.map((row) => ({
      id: row.id,
      slot: row.slot,
      sealed: { masterKeyId: row.master_key_id, wrappedDek: row.wrapped_dek, ciphertext: row.ciphertext },
    }));
  }

  /** A new wrapped data key for one seal, only if nobody replaced it meanwhile (compare-and-swap). */
  async replaceSeal(seal: EndpointSeal, to: SealedSecret, db: Queryable = this.pool): Promise<boolean> {
    const prefix = seal.slot === 'current' ? '' : 'previous_';
    const r = await db.query(
      `update webhook_endpoints set ${prefix}master_key_id = $2, ${prefix}wrapped_dek = $3 where id = $1 and ${prefix}wrapped_dek = $4`,
      [seal.id, to.masterKeyId, to.wrappedDek, seal.sealed.wrappedDek],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * Forgets previous secrets whose grace is over: they never sign again, and left in place they
   * would keep a retired master key in use. The expiry date stays, as the record of the rotation.
   */
  async dropExpiredPreviousSecrets(db: Queryable = this.pool): Promise<number> {
    const r = await db.query(
      `update webhook_endpoints set previous_master_key_id = null, previous_wrapped_dek = null, previous_ciphertext = null
        where previous_master_key_id is not null and previous_secret_expires_at <= now()`,
    );
    return r.rowCount ?? 0;
  }

  async delete(id: string, db: Queryable = this.pool): Promise<WebhookEndpoint | null> {
    const r = await db.query<Row>('delete from webhook_endpoints where id = $1 returning *', [id]);
    return r.rows[0] ? toEndpoint(r.rows[0]) : null;
  }
}
